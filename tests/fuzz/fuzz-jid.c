/* fuzz-jid.c: libFuzzer target for the JID parser (core/jid.c).
 *
 * The input bytes are parsed as a JID.  When they parse, the invariants of
 * include/myna/jid.h are checked and a broken one aborts: the string form
 * re-parses to an equal JID with the same string and hash (normalisation
 * is idempotent), the bare form is a prefix of the full form, the parts are
 * 1..1023 bytes and rebuild the same JID, and each part's prep_* helper
 * leaves it unchanged.  Each prep_* helper also runs on the raw input and
 * must be idempotent when it succeeds.  Failures must carry a
 * MYNA_JID_ERROR. */
#include "myna/jid.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) abort (); } while (0)

static void
check_error (const GError *error)
{
  CHECK (error != NULL);
  CHECK (error->domain == MYNA_JID_ERROR);
  CHECK (error->message != NULL);
}

static void
check_part (const char *part)
{
  if (part == NULL)
    return;
  gsize len = strlen (part);
  CHECK (len >= 1 && len <= 1023);
  CHECK (g_utf8_validate (part, len, NULL));
}

/* @prep applied to its own output gives the same output. */
static void
check_prep_idempotent (char *(*prep) (const char *, GError **),
                       const char *input)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *once = prep (input, &error);

  if (once == NULL)
    {
      check_error (error);
      return;
    }
  g_autofree char *twice = prep (once, NULL);
  CHECK (twice != NULL && strcmp (once, twice) == 0);
}

static void
check_same (const MynaJid *a, const MynaJid *b)
{
  CHECK (b != NULL);
  CHECK (myna_jid_equal (a, b));
  CHECK (myna_jid_bare_equal (a, b));
  CHECK (myna_jid_hash (a) == myna_jid_hash (b));
  CHECK (strcmp (myna_jid_to_string (a), myna_jid_to_string (b)) == 0);
}

static void
check_parts (const MynaJid *jid)
{
  const char *full = myna_jid_to_string (jid);
  const char *bare = myna_jid_bare_string (jid);
  const char *local = myna_jid_get_local (jid);
  const char *domain = myna_jid_get_domain (jid);
  const char *resource = myna_jid_get_resource (jid);
  gsize bare_len = strlen (bare);

  check_part (local);
  check_part (domain);
  check_part (resource);
  CHECK (domain != NULL);
  CHECK (strncmp (full, bare, bare_len) == 0);
  CHECK (myna_jid_is_bare (jid) == (resource == NULL));

  g_autofree char *rebuilt = g_strdup_printf ("%s%s%s%s%s",
                                              local ? local : "",
                                              local ? "@" : "", domain,
                                              resource ? "/" : "",
                                              resource ? resource : "");
  CHECK (strcmp (rebuilt, full) == 0);
  CHECK (full[bare_len] == (resource ? '/' : '\0'));

  g_autofree char *l = local ? myna_jid_prep_local (local, NULL) : NULL;
  g_autofree char *d = myna_jid_prep_domain (domain, NULL);
  g_autofree char *r = resource ? myna_jid_prep_resource (resource, NULL)
                                : NULL;
  CHECK (local == NULL || (l != NULL && strcmp (l, local) == 0));
  CHECK (d != NULL && strcmp (d, domain) == 0);
  CHECK (resource == NULL || (r != NULL && strcmp (r, resource) == 0));
}

static void
check_jid (MynaJid *jid)
{
  check_parts (jid);

  g_autoptr(MynaJid) again = myna_jid_parse (myna_jid_to_string (jid), NULL);
  check_same (jid, again);

  g_autoptr(MynaJid) built = myna_jid_new (myna_jid_get_local (jid),
                                           myna_jid_get_domain (jid),
                                           myna_jid_get_resource (jid), NULL);
  check_same (jid, built);

  g_autoptr(MynaJid) bare = myna_jid_get_bare (jid);
  g_autoptr(MynaJid) bare_parsed = myna_jid_parse (myna_jid_bare_string (jid),
                                                   NULL);
  check_same (bare, bare_parsed);
  CHECK (myna_jid_is_bare (bare));
  CHECK (myna_jid_bare_equal (jid, bare));
  CHECK (myna_jid_is_bare (jid) == (bare == jid));

  g_autoptr(MynaJid) same = myna_jid_with_resource (jid,
                                                    myna_jid_get_resource (jid),
                                                    NULL);
  check_same (jid, same);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *str = g_strndup ((const char *) data, size);
  g_autoptr(GError) error = NULL;
  g_autoptr(MynaJid) jid = myna_jid_parse (str, &error);

  if (jid != NULL)
    {
      CHECK (error == NULL);
      check_jid (jid);
    }
  else
    check_error (error);

  check_prep_idempotent (myna_jid_prep_local, str);
  check_prep_idempotent (myna_jid_prep_domain, str);
  check_prep_idempotent (myna_jid_prep_resource, str);
  return 0;
}
