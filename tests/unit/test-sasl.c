/* test-sasl.c: the SCRAM key derivation (core/sasl.c) against published
 * PBKDF2 vectors and against gnutls_pbkdf2 over a grid of lengths. */
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

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/sasl/pbkdf2/rfc6070", test_rfc6070);
  g_test_add_func ("/sasl/pbkdf2/rfc7914", test_rfc7914);
  g_test_add_func ("/sasl/pbkdf2/same-as-gnutls", test_against_gnutls);
  return g_test_run ();
}
