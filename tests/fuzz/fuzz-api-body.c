/* fuzz-api-body: the HTTP API's JSON body parsers (core/api-body.c) on
 * arbitrary bytes.  The first byte picks the parser: bit 1 set, the
 * notification's; else the low bit, message or user creation.  The rest
 * is the body.
 *
 * Invariants: a failure carries a MYNA_API_ERROR with a message and leaves
 * the output cleared; a success came from valid UTF-8 within the size
 * limit and yields fields within their bounds, valid UTF-8, made of XML
 * characters, with JIDs and JID parts already in normal form; and the
 * <message/> built from a parsed message survives serialisation and
 * parsing with its addresses and text unchanged. */
#include <myna/api.h>
#include <myna/xmlstream.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) abort (); } while (0)

static void
check_error (const GError *error)
{
  CHECK (error != NULL);
  CHECK (error->domain == MYNA_API_ERROR);
  CHECK (error->message != NULL && *error->message != '\0');
}

static void
check_text (const char *text, gsize max, gboolean may_be_empty)
{
  gsize len = strlen (text);

  CHECK (len <= max);
  CHECK (may_be_empty || len > 0);
  CHECK (g_utf8_validate (text, (gssize) len, NULL));
  CHECK (myna_api_text_is_xml (text));
}

/* @jid is in normal form: parsing its text gives the same text. */
static void
check_jid (const MynaJid *jid)
{
  g_autoptr(MynaJid) again = myna_jid_parse (myna_jid_to_string (jid), NULL);

  CHECK (again != NULL);
  CHECK (strcmp (myna_jid_to_string (again), myna_jid_to_string (jid)) == 0);
}

static void
check_stanza (const MynaApiMessage *msg)
{
  g_autoptr(MynaJid) host = myna_jid_parse ("localhost", NULL);
  g_autoptr(MynaStanza) stanza = myna_api_message_to_stanza (msg, host, "fuzz");
  g_autofree char *xml = myna_stanza_to_string (stanza);
  g_autoptr(GError) error = NULL;
  g_autoptr(MynaStanza) back = myna_stanza_parse (xml, -1, &error);

  CHECK (back != NULL);
  CHECK (g_strcmp0 (myna_stanza_get_to (back), myna_jid_to_string (msg->to)) == 0);
  CHECK (g_strcmp0 (myna_stanza_get_from (back),
                    myna_jid_to_string (msg->from != NULL ? msg->from : host)) == 0);
  CHECK (g_strcmp0 (myna_stanza_get_type (back), msg->type) == 0);
  CHECK (g_strcmp0 (myna_stanza_get_child_text (back, "body"), msg->body) == 0);
  CHECK (g_strcmp0 (myna_stanza_get_child_text (back, "subject"), msg->subject) == 0);
}

static void
fuzz_message (const char *body, gsize len)
{
  g_auto(MynaApiMessage) msg = { 0 };
  g_autoptr(GError) error = NULL;

  if (!myna_api_parse_message (body, len, &msg, &error))
    {
      check_error (error);
      CHECK (msg.to == NULL && msg.from == NULL && msg.body == NULL
             && msg.subject == NULL && msg.type == NULL);
      return;
    }
  CHECK (error == NULL);
  CHECK (len <= MYNA_API_MAX_BODY && g_utf8_validate_len (body, len, NULL));
  CHECK (msg.to != NULL && msg.body != NULL && msg.type != NULL);
  CHECK (strcmp (msg.type, "chat") == 0 || strcmp (msg.type, "normal") == 0
         || strcmp (msg.type, "headline") == 0);
  check_jid (msg.to);
  if (msg.from != NULL)
    check_jid (msg.from);
  check_text (msg.body, MYNA_API_MAX_TEXT, FALSE);
  if (msg.subject != NULL)
    check_text (msg.subject, MYNA_API_MAX_SUBJECT, TRUE);
  check_stanza (&msg);
}

static void
fuzz_user (const char *body, gsize len)
{
  g_auto(MynaApiUser) user = { 0 };
  g_autoptr(GError) error = NULL;

  if (!myna_api_parse_user (body, len, &user, &error))
    {
      check_error (error);
      CHECK (user.user == NULL && user.host == NULL && user.password == NULL);
      return;
    }
  CHECK (error == NULL);
  CHECK (len <= MYNA_API_MAX_BODY && g_utf8_validate_len (body, len, NULL));
  CHECK (user.user != NULL && user.password != NULL);

  g_autofree char *local = myna_jid_prep_local (user.user, NULL);
  CHECK (local != NULL && strcmp (local, user.user) == 0);
  if (user.host != NULL)
    {
      g_autofree char *domain = myna_jid_prep_domain (user.host, NULL);
      CHECK (domain != NULL && strcmp (domain, user.host) == 0);
    }
  check_text (user.password, MYNA_API_MAX_PASSWORD, FALSE);
  for (const char *p = user.password; *p != '\0'; p++)
    CHECK ((guchar) *p >= 0x20 && *p != 0x7f);
}

static void
fuzz_notification (const char *body, gsize len)
{
  g_auto(MynaApiNotification) n = { 0 };
  g_autoptr(GError) error = NULL;

  if (!myna_api_parse_notification (body, len, &n, &error))
    {
      check_error (error);
      CHECK (n.to == NULL && n.title == NULL && n.message == NULL && n.uri == NULL
             && n.ttl == 0 && !n.broadcast);
      return;
    }
  CHECK (error == NULL);
  CHECK (len <= MYNA_API_MAX_BODY && g_utf8_validate_len (body, len, NULL));
  CHECK (n.broadcast == (n.to == NULL));
  if (n.to != NULL)
    {
      CHECK (n.to->len >= 1 && n.to->len <= MYNA_API_MAX_RECIPIENTS);
      for (guint i = 0; i < n.to->len; i++)
        {
          MynaJid *jid = n.to->pdata[i];

          check_jid (jid);
          CHECK (myna_jid_get_local (jid) != NULL && myna_jid_get_resource (jid) == NULL);
          for (guint j = 0; j < i; j++)
            CHECK (!myna_jid_equal (n.to->pdata[j], jid));
        }
    }
  check_text (n.title, MYNA_API_MAX_TITLE, FALSE);
  check_text (n.message, MYNA_API_MAX_TEXT, FALSE);
  if (n.uri != NULL)
    check_text (n.uri, MYNA_API_MAX_URI, TRUE);
  CHECK (n.ttl >= 0 && n.ttl <= MYNA_API_MAX_TTL);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  if (data[0] & 2)
    fuzz_notification ((const char *) data + 1, size - 1);
  else if (data[0] & 1)
    fuzz_user ((const char *) data + 1, size - 1);
  else
    fuzz_message ((const char *) data + 1, size - 1);
  return 0;
}
