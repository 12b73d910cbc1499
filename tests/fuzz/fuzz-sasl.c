/* fuzz-sasl: the SASL message parsers — PLAIN, SCRAM client-first and
 * client-final, strict base64, and the client side's SCRAM server-first
 * and server-final (a first byte of 0xf0 and above) — on arbitrary bytes.
 * The first byte picks the parser.  Invariants: a parse either fails with an error (always set:
 * callers read its message) or yields fields that are valid UTF-8 and
 * rebuild a message consistent with the input.  An empty message is also
 * given as NULL, as g_bytes_get_data returns for an empty GBytes (the
 * auth module's case): it must fail with an error too, as must "=". */
#include <myna/sasl.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
check_first (const char *msg, gsize len)
{
  MynaScramClientFirst cf;
  GError *error = NULL;

  if (!myna_scram_parse_client_first (msg, len, &cf, &error))
    {
      if (error == NULL)
        abort ();
      g_error_free (error);
      return;
    }
  if (!g_utf8_validate (cf.username, -1, NULL) || cf.nonce == NULL || *cf.nonce == '\0')
    abort ();
  /* gs2 header + bare is the message, byte for byte. */
  if (strlen (cf.gs2_header) + strlen (cf.bare) != len
      || memcmp (msg, cf.gs2_header, strlen (cf.gs2_header)) != 0)
    abort ();
  myna_scram_client_first_clear (&cf);
}

static void
check_final (const char *msg, gsize len)
{
  MynaScramClientFinal cf;
  GError *error = NULL;

  if (!myna_scram_parse_client_final (msg, len, &cf, &error))
    {
      if (error == NULL)
        abort ();
      g_error_free (error);
      return;
    }
  if (cf.proof == NULL || g_bytes_get_size (cf.proof) == 0 || cf.channel_binding == NULL)
    abort ();
  if (strncmp (msg, cf.without_proof, strlen (cf.without_proof)) != 0)
    abort ();
  myna_scram_client_final_clear (&cf);
}

static void
check_plain (const char *msg, gsize len)
{
  char *authzid = NULL, *authcid = NULL, *password = NULL;
  GError *error = NULL;

  if (!myna_sasl_parse_plain (msg, len, &authzid, &authcid, &password, &error))
    {
      if (error == NULL)
        abort ();
      g_error_free (error);
      return;
    }
  if (*authcid == '\0' || *password == '\0')
    abort ();
  g_free (authzid);
  g_free (authcid);
  g_free (password);
}

static void
check_base64 (const char *msg, gsize len)
{
  g_autofree char *text = msg != NULL ? g_strndup (msg, len) : g_strdup ("");
  GError *error = NULL;
  g_autoptr(GBytes) b = myna_sasl_base64_decode (text, &error);

  if (b == NULL)
    {
      if (error == NULL)
        abort ();
      g_error_free (error);
      /* "" and "=" are empty data, never an error. */
      if (*text == '\0' || strcmp (text, "=") == 0)
        abort ();
      return;
    }
  gsize n;
  const guchar *d = g_bytes_get_data (b, &n);
  if ((*text == '\0' || strcmp (text, "=") == 0) && n != 0)
    abort ();
  /* Re-encoding a valid decode gives the input back (canonical form). */
  if (n > 0)
    {
      g_autofree char *again = g_base64_encode (d, n);
      if (strlen (text) == strlen (again) && strcmp (again, text) != 0
          && strchr (text, '=') == NULL)
        abort ();
    }
}

/* What a server sends a client: server-first (bounded iterations, a
 * non-empty salt), or server-final checked against keys from a fixed
 * password. */
static void
check_server (const char *msg, gsize len, gboolean final)
{
  GError *error = NULL;

  if (!final)
    {
      MynaScramServerFirst sf;

      if (!myna_scram_parse_server_first (msg, len, &sf, &error))
        {
          if (error == NULL)
            abort ();
          g_error_free (error);
          return;
        }
      if (sf.nonce == NULL || sf.salt == NULL || g_bytes_get_size (sf.salt) == 0
          || sf.iterations < 1 || sf.iterations > MYNA_SCRAM_MAX_ITERATIONS)
        abort ();
      myna_scram_server_first_clear (&sf);
      return;
    }
  static const guint8 salt_bytes[] = { 's', 'a', 'l', 't' };
  g_autoptr(GBytes) salt = g_bytes_new_static (salt_bytes, sizeof salt_bytes);
  g_autoptr(GBytes) salted = myna_scram_salted_password (MYNA_SCRAM_SHA256, "pencil", salt, 1);

  if (!myna_scram_check_server_final (MYNA_SCRAM_SHA256, salted, "n=user,r=a,r=ab,s=c2FsdA==,i=1,c=biws,r=ab",
                                      msg, len, &error))
    {
      if (error == NULL)
        abort ();
      g_error_free (error);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  const char *msg = (const char *) data + 1;
  gsize len = size - 1;

  /* Empty data as the auth module hands it over: no pointer at all. */
  if (len == 0)
    msg = NULL;

  if (data[0] >= 0xf0)
    {
      check_server (msg, len, data[0] & 1);
      return 0;
    }
  switch (data[0] % 4)
    {
    case 0:
      check_first (msg, len);
      break;
    case 1:
      check_final (msg, len);
      break;
    case 2:
      check_plain (msg, len);
      break;
    default:
      check_base64 (msg, len);
      break;
    }
  return 0;
}
