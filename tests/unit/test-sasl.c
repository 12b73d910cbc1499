/* test-sasl.c: the SCRAM key derivation (core/sasl.c) against published
 * PBKDF2 vectors and against gnutls_pbkdf2 over a grid of lengths, and
 * the client's side of SCRAM against the RFC 5802 / RFC 7677 examples. */
#include <myna/sasl.h>

#include <gnutls/crypto.h>
#include <string.h>

static char *
hex_of (GBytes *bytes)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  GString *out = g_string_new (NULL);

  for (gsize i = 0; i < len; i++)
    g_string_append_printf (out, "%02x", data[i]);
  return g_string_free (out, FALSE);
}

static void
check_vector (MynaScramHash hash, const char *password, const char *salt,
              guint iterations, const char *expected_hex)
{
  g_autoptr (GBytes) salt_bytes = g_bytes_new (salt, strlen (salt));
  g_autoptr (GBytes) out = myna_scram_salted_password (hash, password, salt_bytes,
                                                       iterations);
  g_autofree char *hex = NULL;

  g_assert_nonnull (out);
  hex = hex_of (out);
  g_assert_cmpstr (hex, ==, expected_hex);
}

/* RFC 6070 (PBKDF2-HMAC-SHA1), first 20 bytes. */
static void
test_rfc6070 (void)
{
  check_vector (MYNA_SCRAM_SHA1, "password", "salt", 1,
                "0c60c80f961f0e71f3a9b524af6012062fe037a6");
  check_vector (MYNA_SCRAM_SHA1, "password", "salt", 2,
                "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957");
  check_vector (MYNA_SCRAM_SHA1, "password", "salt", 4096,
                "4b007901b765489abead49d926f721d065a429c1");
}

/* RFC 7914 §11 (PBKDF2-HMAC-SHA256), first 32 bytes. */
static void
test_rfc7914 (void)
{
  check_vector (MYNA_SCRAM_SHA256, "passwd", "salt", 1,
                "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc");
  check_vector (MYNA_SCRAM_SHA256, "Password", "NaCl", 80000,
                "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56");
}

/* Every password length around the 64-byte HMAC block (longer keys are
 * hashed first), several salt lengths and iteration counts, both hashes:
 * the same bytes as gnutls_pbkdf2. */
static void
test_against_gnutls (void)
{
  static const guint iteration_counts[] = { 1, 2, 3, 17, 4096 };
  static const gsize salt_lengths[] = { 0, 1, 16, 55, 56, 64, 100 };
  static const MynaScramHash hashes[] = { MYNA_SCRAM_SHA1, MYNA_SCRAM_SHA256 };
  guint checked = 0;

  for (gsize pw_len = 1; pw_len <= 130; pw_len += (pw_len >= 60 && pw_len <= 70) ? 1 : 9)
    for (gsize s = 0; s < G_N_ELEMENTS (salt_lengths); s++)
      for (gsize it = 0; it < G_N_ELEMENTS (iteration_counts); it++)
        for (gsize h = 0; h < G_N_ELEMENTS (hashes); h++)
          {
            g_autofree char *password = g_malloc (pw_len + 1);
            g_autofree guint8 *salt = g_malloc (salt_lengths[s] + 1);
            guint8 expected[32];
            gsize size = myna_scram_hash_size (hashes[h]);

            if (iteration_counts[it] == 4096 && pw_len % 3 != 0)
              continue;  /* keep the grid quick */
            for (gsize i = 0; i < pw_len; i++)
              password[i] = (char) ('a' + (i * 7 + pw_len) % 26);
            password[pw_len] = '\0';
            for (gsize i = 0; i < salt_lengths[s]; i++)
              salt[i] = (guint8) (i * 31 + s);

            gnutls_datum_t key = { (unsigned char *) password, (unsigned int) pw_len };
            gnutls_datum_t sd = { salt, (unsigned int) salt_lengths[s] };
            g_assert_cmpint (gnutls_pbkdf2 (hashes[h] == MYNA_SCRAM_SHA1 ? GNUTLS_MAC_SHA1 : GNUTLS_MAC_SHA256,
                                            &key, &sd, iteration_counts[it], expected, size), ==, 0);

            g_autoptr (GBytes) salt_bytes = g_bytes_new (salt, salt_lengths[s]);
            g_autoptr (GBytes) got = myna_scram_salted_password (hashes[h], password, salt_bytes,
                                                                 iteration_counts[it]);
            g_assert_nonnull (got);
            g_assert_cmpmem (g_bytes_get_data (got, NULL), g_bytes_get_size (got), expected, size);
            checked++;
          }
  g_assert_cmpuint (checked, >, 500);
}

/* ---- the client's side of SCRAM ---------------------------------------------- */

/* One published exchange: the client's computations on it. */
typedef struct {
  MynaScramHash hash;
  const char   *client_nonce;
  const char   *client_first_bare;
  const char   *server_first;
  const char   *client_final;   /* with its proof */
  const char   *server_final;
} ScramExample;

/* RFC 5802 §5 (SCRAM-SHA-1) and RFC 7677 §3 (SCRAM-SHA-256): user
 * "user", password "pencil". */
static const ScramExample scram_examples[] = {
  { MYNA_SCRAM_SHA1, "fyko+d2lbbFgONRv9qkxdawL", "n=user,r=fyko+d2lbbFgONRv9qkxdawL",
    "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=" },
  { MYNA_SCRAM_SHA256, "rOprNGfwEbeRWgbNEkqO", "n=user,r=rOprNGfwEbeRWgbNEkqO",
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=" },
};

/* The client's side of both RFC examples: parse the server-first, derive,
 * prove (the same proof as the RFC's), check the server-final; a changed
 * signature and an e= are refused. */
static void
test_scram_client_vectors (void)
{
  for (gsize k = 0; k < G_N_ELEMENTS (scram_examples); k++)
    {
      const ScramExample *ex = &scram_examples[k];
      MynaScramServerFirst sf;
      g_autoptr(GError) error = NULL;

      g_assert_true (myna_scram_parse_server_first (ex->server_first, strlen (ex->server_first),
                                                    &sf, &error));
      g_assert_no_error (error);
      g_assert_true (g_str_has_prefix (sf.nonce, ex->client_nonce));
      g_assert_cmpuint (sf.iterations, ==, 4096);
      g_assert_cmpstr (sf.message, ==, ex->server_first);

      g_autoptr(GBytes) salted = myna_scram_salted_password (ex->hash, "pencil", sf.salt,
                                                             sf.iterations);
      g_autofree char *without_proof = g_strdup_printf ("c=biws,r=%s", sf.nonce);
      g_autofree char *auth = g_strdup_printf ("%s,%s,%s", ex->client_first_bare,
                                               sf.message, without_proof);
      g_autoptr(GBytes) proof = myna_scram_client_proof (ex->hash, salted, auth);
      g_autofree char *proof64 = g_base64_encode (g_bytes_get_data (proof, NULL),
                                                  g_bytes_get_size (proof));
      g_autofree char *final = g_strdup_printf ("%s,p=%s", without_proof, proof64);
      g_assert_cmpstr (final, ==, ex->client_final);

      /* The server's check of the same proof agrees. */
      g_autoptr(GBytes) stored = NULL;
      g_autoptr(GBytes) server_key = NULL;
      myna_scram_keys (ex->hash, salted, &stored, &server_key);
      g_assert_true (myna_scram_verify_proof (ex->hash, stored, auth, proof));

      g_assert_true (myna_scram_check_server_final (ex->hash, salted, auth, ex->server_final,
                                                    strlen (ex->server_final), &error));
      g_assert_no_error (error);

      /* One character of the signature changed. */
      g_autofree char *bad = g_strdup (ex->server_final);
      bad[3] = bad[3] == 'A' ? 'B' : 'A';
      g_assert_false (myna_scram_check_server_final (ex->hash, salted, auth, bad, strlen (bad),
                                                     &error));
      g_assert_error (error, MYNA_SASL_ERROR, MYNA_SASL_ERROR_NOT_AUTHORIZED);
      g_assert_cmpstr (error->message, ==, "server signature");
      g_clear_error (&error);

      g_assert_false (myna_scram_check_server_final (ex->hash, salted, auth, "e=invalid-proof",
                                                     15, &error));
      g_assert_error (error, MYNA_SASL_ERROR, MYNA_SASL_ERROR_NOT_AUTHORIZED);
      g_assert_nonnull (strstr (error->message, "invalid-proof"));
      g_clear_error (&error);
      myna_scram_server_first_clear (&sf);
    }
}

/* Hostile or broken server-first-messages give an error, never a crash. */
static void
test_scram_server_first_bad (void)
{
  static const char *const bad[] = {
    "",
    "r=abc",
    "r=abc,s=QSXCR+Q6sek8bf92",
    "m=ext,r=abc,s=QSXCR+Q6sek8bf92,i=4096",
    "s=QSXCR+Q6sek8bf92,r=abc,i=4096",
    "r=,s=QSXCR+Q6sek8bf92,i=4096",
    "r=abc,s=,i=4096",
    "r=abc,s=!!!!,i=4096",
    "r=abc,s=QSXCR+Q6sek8bf92,i=0",
    "r=abc,s=QSXCR+Q6sek8bf92,i=-1",
    "r=abc,s=QSXCR+Q6sek8bf92,i=+5",
    "r=abc,s=QSXCR+Q6sek8bf92,i=4096x",
    "r=abc,s=QSXCR+Q6sek8bf92,i=99999999999",
    "r=abc,s=QSXCR+Q6sek8bf92,i=1000001",
    "r=a b,s=QSXCR+Q6sek8bf92,i=4096",
  };

  for (gsize k = 0; k < G_N_ELEMENTS (bad); k++)
    {
      MynaScramServerFirst sf;
      g_autoptr(GError) error = NULL;

      g_assert_false (myna_scram_parse_server_first (bad[k], strlen (bad[k]), &sf, &error));
      g_assert_error (error, MYNA_SASL_ERROR, MYNA_SASL_ERROR_MALFORMED);
      g_assert_null (sf.nonce);
      g_assert_null (sf.salt);
    }

  /* An extension after the count is allowed; the largest count too. */
  const char *ok = "r=abc,s=QSXCR+Q6sek8bf92,i=1000000,x=ext";
  MynaScramServerFirst sf;
  g_autoptr(GError) error = NULL;
  g_assert_true (myna_scram_parse_server_first (ok, strlen (ok), &sf, &error));
  g_assert_cmpuint (sf.iterations, ==, 1000000);
  g_assert_cmpuint (g_bytes_get_size (sf.salt), ==, 12);
  myna_scram_server_first_clear (&sf);

  /* A server-final that is neither v= nor e=. */
  g_autoptr(GBytes) salted = g_bytes_new ("0123456789abcdef0123", 20);
  g_assert_false (myna_scram_check_server_final (MYNA_SCRAM_SHA1, salted, "a", "x=1", 3, &error));
  g_assert_error (error, MYNA_SASL_ERROR, MYNA_SASL_ERROR_MALFORMED);
  g_clear_error (&error);
  g_assert_false (myna_scram_check_server_final (MYNA_SCRAM_SHA1, salted, "a", "v=AAAA", 6, &error));
  g_assert_error (error, MYNA_SASL_ERROR, MYNA_SASL_ERROR_NOT_AUTHORIZED);
}

/* saslname escaping, and its round trip through the server's parser. */
static void
test_scram_saslname (void)
{
  g_autofree char *a = myna_scram_encode_saslname ("us,er=x");
  g_autofree char *b = myna_scram_encode_saslname ("plain");
  g_assert_cmpstr (a, ==, "us=2Cer=3Dx");
  g_assert_cmpstr (b, ==, "plain");

  g_autofree char *first = g_strdup_printf ("n,,n=%s,r=nonce", a);
  MynaScramClientFirst cf;
  g_autoptr(GError) error = NULL;
  g_assert_true (myna_scram_parse_client_first (first, strlen (first), &cf, &error));
  g_assert_cmpstr (cf.username, ==, "us,er=x");
  myna_scram_client_first_clear (&cf);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/sasl/pbkdf2/rfc6070", test_rfc6070);
  g_test_add_func ("/sasl/pbkdf2/rfc7914", test_rfc7914);
  g_test_add_func ("/sasl/pbkdf2/same-as-gnutls", test_against_gnutls);
  g_test_add_func ("/sasl/scram-client/rfc-vectors", test_scram_client_vectors);
  g_test_add_func ("/sasl/scram-client/server-first-bad", test_scram_server_first_bad);
  g_test_add_func ("/sasl/scram-client/saslname", test_scram_saslname);
  return g_test_run ();
}
