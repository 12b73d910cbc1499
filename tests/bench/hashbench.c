/* hashbench.c: times PBKDF2 alone at a given iteration count, as Myna
 * computes it for a PLAIN login (myna_scram_salted_password, core/sasl.c)
 * and as GnuTLS's gnutls_pbkdf2 does, for SHA-1 and SHA-256.  Prints
 *   RESULT scenario=pbkdf2 impl=myna|gnutls iterations=N sha1_ms=… sha256_ms=…
 * Used by tests/bench/run.sh to set the bound on logins per second. */
#include <myna/sasl.h>

#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>

#define SECONDS_EACH 2.0

static double
ms_per_hash (gboolean myna, MynaScramHash hash, guint iterations)
{
  static const guint8 salt[16] = "0123456789abcdef";
  g_autoptr (GBytes) salt_bytes = g_bytes_new_static (salt, sizeof salt);
  gint64 t0 = g_get_monotonic_time (), elapsed;
  guint n = 0;

  do
    {
      if (myna)
        {
          g_autoptr (GBytes) out = myna_scram_salted_password (hash, "pw", salt_bytes, iterations);
          g_assert (out != NULL);
        }
      else
        {
          guint8 out[32];
          gnutls_datum_t key = { (unsigned char *) "pw", 2 };
          gnutls_datum_t s = { (unsigned char *) salt, sizeof salt };
          g_assert (gnutls_pbkdf2 (hash == MYNA_SCRAM_SHA1 ? GNUTLS_MAC_SHA1 : GNUTLS_MAC_SHA256,
                                   &key, &s, iterations, out, myna_scram_hash_size (hash)) == 0);
        }
      n++;
      elapsed = g_get_monotonic_time () - t0;
    }
  while (elapsed < SECONDS_EACH * G_USEC_PER_SEC);
  return elapsed / 1000.0 / n;
}

int
main (int argc, char **argv)
{
  guint iterations = argc > 1 ? (guint) strtoul (argv[1], NULL, 10) : 4096;

  if (iterations == 0)
    {
      fprintf (stderr, "usage: hashbench [ITERATIONS]\n");
      return 2;
    }
  for (int myna = 1; myna >= 0; myna--)
    {
      double sha1 = ms_per_hash (myna, MYNA_SCRAM_SHA1, iterations);
      double sha256 = ms_per_hash (myna, MYNA_SCRAM_SHA256, iterations);

      printf ("RESULT scenario=pbkdf2 impl=%s iterations=%u sha1_ms=%.4f sha256_ms=%.4f\n",
              myna ? "myna" : "gnutls", iterations, sha1, sha256);
    }
  return 0;
}
