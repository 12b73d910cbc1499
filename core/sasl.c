/* sasl.c: SASL PLAIN and SCRAM message parsing and the SCRAM key
 * computations (HMAC, PBKDF2 and hashes from GnuTLS).  Network input is
 * bounded and checked field by field; nothing here aborts on bad input. */
#include <myna/sasl.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <nettle/hmac.h>
#include <nettle/sha1.h>
#include <nettle/sha2.h>
#include <string.h>

G_DEFINE_QUARK (myna-sasl-error-quark, myna_sasl_error)

static gboolean
malformed (GError **error, const char *what)
{
  g_set_error (error, MYNA_SASL_ERROR, MYNA_SASL_ERROR_MALFORMED, "malformed SASL message: %s",
               what);
  return FALSE;
}

void
myna_scram_client_first_clear (MynaScramClientFirst *m)
{
  g_clear_pointer (&m->cbind_name, g_free);
  g_clear_pointer (&m->authzid, g_free);
  g_clear_pointer (&m->username, g_free);
  g_clear_pointer (&m->nonce, g_free);
  g_clear_pointer (&m->gs2_header, g_free);
  g_clear_pointer (&m->bare, g_free);
}

void
myna_scram_client_final_clear (MynaScramClientFinal *m)
{
  g_clear_pointer (&m->channel_binding, g_bytes_unref);
  g_clear_pointer (&m->nonce, g_free);
  g_clear_pointer (&m->proof, g_bytes_unref);
  g_clear_pointer (&m->without_proof, g_free);
}

/* The message must be UTF-8 without NUL and within bounds.  An empty
 * message may come as NULL (g_bytes_get_data of an empty GBytes): it is
 * refused with an error like any other malformed message. */
static gboolean
check_message (const char *msg, gsize len, GError **error)
{
  if (msg == NULL || len == 0)
    return malformed (error, "empty");
  if (len > MYNA_SASL_MAX_MESSAGE)
    return malformed (error, "too long");
  if (memchr (msg, '\0', len) != NULL)
    return malformed (error, "contains NUL");
  if (!g_utf8_validate_len (msg, len, NULL))
    return malformed (error, "not UTF-8");
  return TRUE;
}

/* saslname: "=2C" → ",", "=3D" → "="; any other "=" is an error. */
static char *
decode_saslname (const char *s, gsize len)
{
  GString *out = g_string_sized_new (len);

  for (gsize i = 0; i < len; i++)
    {
      if (s[i] != '=')
        {
          g_string_append_c (out, s[i]);
          continue;
        }
      if (i + 2 < len && strncmp (s + i, "=2C", 3) == 0)
        g_string_append_c (out, ',');
      else if (i + 2 < len && strncmp (s + i, "=3D", 3) == 0)
        g_string_append_c (out, '=');
      else
        {
          g_string_free (out, TRUE);
          return NULL;
        }
      i += 2;
    }
  return g_string_free (out, FALSE);
}

/* Splits @msg at commas into at most @max fields. */
static char **
split_fields (const char *msg, gsize len, int max)
{
  g_autofree char *copy = g_strndup (msg, len);
  return g_strsplit (copy, ",", max);
}

/* The value of "k=value" when the attribute is @k, else NULL. */
static const char *
attr_value (const char *field, char k)
{
  if (field == NULL || field[0] != k || field[1] != '=')
    return NULL;
  return field + 2;
}

static gboolean
valid_nonce (const char *n)
{
  if (n == NULL || *n == '\0' || strlen (n) > 1024)
    return FALSE;
  for (const char *p = n; *p; p++)
    if (*p < 0x21 || *p > 0x7e || *p == ',')
      return FALSE;
  return TRUE;
}

gboolean
myna_scram_parse_client_first (const char *msg, gsize len, MynaScramClientFirst *out,
                               GError **error)
{
  g_return_val_if_fail (out != NULL, FALSE);
  g_return_val_if_fail (msg != NULL || len == 0, FALSE);
  memset (out, 0, sizeof *out);
  if (!check_message (msg, len, error))
    return FALSE;

  /* gs2-header = gs2-cbind-flag "," [ authzid ] "," */
  g_auto(GStrv) f = split_fields (msg, len, -1);
  guint n = g_strv_length (f);
  if (n < 4)
    return malformed (error, "too few fields");
  if (strcmp (f[0], "n") == 0 || strcmp (f[0], "y") == 0)
    out->cbind_flag = f[0][0];
  else if (g_str_has_prefix (f[0], "p=") && f[0][2] != '\0' && strlen (f[0]) < 64)
    {
      out->cbind_flag = 'p';
      out->cbind_name = g_strdup (f[0] + 2);
    }
  else
    return malformed (error, "bad channel binding flag");
  if (f[1][0] != '\0')
    {
      const char *a = attr_value (f[1], 'a');
      if (a == NULL || (out->authzid = decode_saslname (a, strlen (a))) == NULL)
        {
          myna_scram_client_first_clear (out);
          return malformed (error, "bad authzid");
        }
    }
  gsize header_len = strlen (f[0]) + 1 + strlen (f[1]) + 1;
  out->gs2_header = g_strndup (msg, header_len);
  out->bare = g_strndup (msg + header_len, len - header_len);
  /* client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions] */
  const char *user = attr_value (f[2], 'n');
  const char *nonce = attr_value (f[3], 'r');
  if (user == NULL || *user == '\0' || (out->username = decode_saslname (user, strlen (user))) == NULL)
    {
      myna_scram_client_first_clear (out);
      return malformed (error, "bad username");
    }
  if (!valid_nonce (nonce))
    {
      myna_scram_client_first_clear (out);
      return malformed (error, "bad nonce");
    }
  out->nonce = g_strdup (nonce);
  return TRUE;
}

GBytes *
myna_sasl_base64_decode (const char *text, GError **error)
{
  g_return_val_if_fail (text != NULL, NULL);

  gsize len = strlen (text), out_len = 0;

  if (strcmp (text, "=") == 0 || len == 0)
    return g_bytes_new (NULL, 0);
  if (len % 4 != 0)
    {
      malformed (error, "bad base64 length");
      return NULL;
    }
  for (gsize i = 0; i < len; i++)
    {
      char c = text[i];
      gboolean ok = g_ascii_isalnum (c) || c == '+' || c == '/'
                    || (c == '=' && i >= len - 2 && (i == len - 1 || text[len - 1] == '='));
      if (!ok)
        {
          malformed (error, "bad base64 character");
          return NULL;
        }
    }
  guchar *data = g_base64_decode (text, &out_len);
  return g_bytes_new_take (data, out_len);
}

gboolean
myna_scram_parse_client_final (const char *msg, gsize len, MynaScramClientFinal *out,
                               GError **error)
{
  g_return_val_if_fail (out != NULL, FALSE);
  g_return_val_if_fail (msg != NULL || len == 0, FALSE);
  memset (out, 0, sizeof *out);
  if (!check_message (msg, len, error))
    return FALSE;

  g_auto(GStrv) f = split_fields (msg, len, -1);
  guint n = g_strv_length (f);
  if (n < 3)
    return malformed (error, "too few fields");
  const char *c = attr_value (f[0], 'c');
  const char *r = attr_value (f[1], 'r');
  const char *p = attr_value (f[n - 1], 'p');
  if (c == NULL || r == NULL || p == NULL || !valid_nonce (r))
    return malformed (error, "missing c=, r= or p=");
  out->channel_binding = myna_sasl_base64_decode (c, error);
  out->proof = out->channel_binding != NULL ? myna_sasl_base64_decode (p, error) : NULL;
  if (out->proof == NULL || g_bytes_get_size (out->proof) == 0)
    {
      myna_scram_client_final_clear (out);
      if (error != NULL && *error == NULL)
        malformed (error, "empty proof");
      return FALSE;
    }
  out->nonce = g_strdup (r);
  /* Everything before ",p=". */
  gsize cut = len - strlen (f[n - 1]) - 1;
  out->without_proof = g_strndup (msg, cut);
  return TRUE;
}

gboolean
myna_sasl_parse_plain (const char *msg, gsize len, char **authzid, char **authcid,
                       char **password, GError **error)
{
  g_return_val_if_fail (authzid != NULL && authcid != NULL && password != NULL, FALSE);
  g_return_val_if_fail (msg != NULL || len == 0, FALSE);

  *authzid = *authcid = *password = NULL;
  if (msg == NULL || len == 0)
    return malformed (error, "empty");
  if (len > MYNA_SASL_MAX_MESSAGE)
    return malformed (error, "too long");
  const char *end = msg + len;
  const char *nul1 = memchr (msg, '\0', len);
  const char *nul2 = nul1 != NULL ? memchr (nul1 + 1, '\0', (gsize) (end - nul1 - 1)) : NULL;
  if (nul2 == NULL || memchr (nul2 + 1, '\0', (gsize) (end - nul2 - 1)) != NULL)
    return malformed (error, "PLAIN needs exactly two NUL separators");
  if (nul2 == nul1 + 1 || nul2 + 1 == end)
    return malformed (error, "empty username or password");
  if (!g_utf8_validate_len (msg, (gsize) (nul1 - msg), NULL)
      || !g_utf8_validate_len (nul1 + 1, (gsize) (nul2 - nul1 - 1), NULL)
      || !g_utf8_validate_len (nul2 + 1, (gsize) (end - nul2 - 1), NULL))
    return malformed (error, "not UTF-8");
  *authzid = nul1 > msg ? g_strndup (msg, (gsize) (nul1 - msg)) : NULL;
  *authcid = g_strndup (nul1 + 1, (gsize) (nul2 - nul1 - 1));
  *password = g_strndup (nul2 + 1, (gsize) (end - nul2 - 1));
  return TRUE;
}

/* ---- computations ---------------------------------------------------------- */

static gnutls_mac_algorithm_t
mac_of (MynaScramHash hash)
{
  return hash == MYNA_SCRAM_SHA1 ? GNUTLS_MAC_SHA1 : GNUTLS_MAC_SHA256;
}

static gnutls_digest_algorithm_t
dig_of (MynaScramHash hash)
{
  return hash == MYNA_SCRAM_SHA1 ? GNUTLS_DIG_SHA1 : GNUTLS_DIG_SHA256;
}

gsize
myna_scram_hash_size (MynaScramHash hash)
{
  return hash == MYNA_SCRAM_SHA1 ? 20 : 32;
}

static GBytes *
hmac (MynaScramHash hash, GBytes *key, const void *data, gsize len)
{
  guchar out[32];
  gsize klen;
  gconstpointer k = g_bytes_get_data (key, &klen);

  gnutls_hmac_fast (mac_of (hash), k, klen, data, len, out);
  return g_bytes_new (out, myna_scram_hash_size (hash));
}

/* PBKDF2 (RFC 8018) for one output block, dkLen = hLen, which is all SCRAM
 * asks for.  gnutls_pbkdf2 goes through nettle's generic HMAC, which copies
 * three hash contexts and re-pads each message on every iteration; about
 * 40 % of a PLAIN login's hashing went there (docs/PERFORMANCE.md).  Here
 * U1 is nettle's HMAC, and every later iteration is exactly two calls of
 * the hash's block function on pre-padded blocks, starting from the ipad
 * and opad states HMAC computed once.  The results are checked against
 * gnutls_pbkdf2 by tests/unit/test-sasl.c. */

/* The block after the 64-byte pad block: a digest of @dlen bytes, then
 * the padding and the bit length of pad block + digest. */
static void
pad_digest_block (guint8 block[64], gsize dlen)
{
  guint64 bits = (64 + dlen) * 8;

  memset (block + dlen, 0, 64 - dlen);
  block[dlen] = 0x80;
  for (int i = 0; i < 8; i++)
    block[63 - i] = (guint8) (bits >> (8 * i));
}

static inline void
store_be32 (guint8 *p, guint32 v)
{
  v = GUINT32_TO_BE (v);
  memcpy (p, &v, sizeof v);
}

static inline guint32
load_be32 (const guint8 *p)
{
  guint32 v;

  memcpy (&v, p, sizeof v);
  return GUINT32_FROM_BE (v);
}

static const guint8 block_index_one[4] = { 0, 0, 0, 1 };

static void
pbkdf2_sha1 (const guint8 *key, gsize key_len, const guint8 *salt,
             gsize salt_len, guint iterations, guint8 out[SHA1_DIGEST_SIZE])
{
  struct hmac_sha1_ctx hmac;
  guint8 block[64];
  guint32 state[_SHA1_DIGEST_LENGTH], t[_SHA1_DIGEST_LENGTH];

  hmac_sha1_set_key (&hmac, key_len, key);
  hmac_sha1_update (&hmac, salt_len, salt);
  hmac_sha1_update (&hmac, sizeof block_index_one, block_index_one);
  hmac_sha1_digest (&hmac, SHA1_DIGEST_SIZE, block);
  pad_digest_block (block, SHA1_DIGEST_SIZE);
  for (int i = 0; i < _SHA1_DIGEST_LENGTH; i++)
    t[i] = load_be32 (block + 4 * i);

  for (guint n = 1; n < iterations; n++)
    {
      memcpy (state, hmac.inner.state, sizeof state);
      nettle_sha1_compress (state, block);
      for (int i = 0; i < _SHA1_DIGEST_LENGTH; i++)
        store_be32 (block + 4 * i, state[i]);
      memcpy (state, hmac.outer.state, sizeof state);
      nettle_sha1_compress (state, block);
      for (int i = 0; i < _SHA1_DIGEST_LENGTH; i++)
        {
          store_be32 (block + 4 * i, state[i]);
          t[i] ^= state[i];
        }
    }
  for (int i = 0; i < _SHA1_DIGEST_LENGTH; i++)
    store_be32 (out + 4 * i, t[i]);
  gnutls_memset (&hmac, 0, sizeof hmac);
  gnutls_memset (block, 0, sizeof block);
}

/* nettle 3.8 has no public SHA-256 block function: sha256_update on an
 * empty buffer with exactly one block compresses it in place. */
static inline void
sha256_block (struct sha256_ctx *ctx, const struct sha256_ctx *from,
              const guint8 block[64])
{
  memcpy (ctx->state, from->state, sizeof ctx->state);
  ctx->count = from->count;
  ctx->index = 0;
  sha256_update (ctx, 64, block);
}

static void
pbkdf2_sha256 (const guint8 *key, gsize key_len, const guint8 *salt,
               gsize salt_len, guint iterations, guint8 out[SHA256_DIGEST_SIZE])
{
  struct hmac_sha256_ctx hmac;
  struct sha256_ctx ctx;
  guint8 block[64];
  guint32 t[_SHA256_DIGEST_LENGTH];

  hmac_sha256_set_key (&hmac, key_len, key);
  hmac_sha256_update (&hmac, salt_len, salt);
  hmac_sha256_update (&hmac, sizeof block_index_one, block_index_one);
  hmac_sha256_digest (&hmac, SHA256_DIGEST_SIZE, block);
  pad_digest_block (block, SHA256_DIGEST_SIZE);
  for (int i = 0; i < _SHA256_DIGEST_LENGTH; i++)
    t[i] = load_be32 (block + 4 * i);

  for (guint n = 1; n < iterations; n++)
    {
      sha256_block (&ctx, &hmac.inner, block);
      for (int i = 0; i < _SHA256_DIGEST_LENGTH; i++)
        store_be32 (block + 4 * i, ctx.state[i]);
      sha256_block (&ctx, &hmac.outer, block);
      for (int i = 0; i < _SHA256_DIGEST_LENGTH; i++)
        {
          store_be32 (block + 4 * i, ctx.state[i]);
          t[i] ^= ctx.state[i];
        }
    }
  for (int i = 0; i < _SHA256_DIGEST_LENGTH; i++)
    store_be32 (out + 4 * i, t[i]);
  gnutls_memset (&hmac, 0, sizeof hmac);
  gnutls_memset (&ctx, 0, sizeof ctx);
  gnutls_memset (block, 0, sizeof block);
}

GBytes *
myna_scram_salted_password (MynaScramHash hash, const char *password, GBytes *salt,
                            guint iterations)
{
  g_return_val_if_fail (password != NULL && salt != NULL && iterations > 0, NULL);

  /* SASLprep (RFC 4013) is approximated by NFKC, which is what it mostly
   * amounts to for passwords. */
  g_autofree char *prepped = g_utf8_normalize (password, -1, G_NORMALIZE_NFKC);
  const char *pw = prepped != NULL ? prepped : password;
  gsize slen;
  gconstpointer s = g_bytes_get_data (salt, &slen);
  guint8 out[SHA256_DIGEST_SIZE];

  if (hash == MYNA_SCRAM_SHA1)
    pbkdf2_sha1 ((const guint8 *) pw, strlen (pw), s, slen, iterations, out);
  else
    pbkdf2_sha256 ((const guint8 *) pw, strlen (pw), s, slen, iterations, out);
  g_autoptr (GBytes) result = g_bytes_new (out, myna_scram_hash_size (hash));
  gnutls_memset (out, 0, sizeof out);
  return g_steal_pointer (&result);
}

void
myna_scram_keys (MynaScramHash hash, GBytes *salted, GBytes **stored_key, GBytes **server_key)
{
  g_autoptr(GBytes) client_key = hmac (hash, salted, "Client Key", 10);
  guchar digest[32];
  gsize len;
  gconstpointer ck = g_bytes_get_data (client_key, &len);

  gnutls_hash_fast (dig_of (hash), ck, len, digest);
  *stored_key = g_bytes_new (digest, myna_scram_hash_size (hash));
  *server_key = hmac (hash, salted, "Server Key", 10);
}

gboolean
myna_scram_verify_proof (MynaScramHash hash, GBytes *stored_key, const char *auth_message,
                         GBytes *proof)
{
  gsize n = myna_scram_hash_size (hash), plen, slen;
  const guchar *p = g_bytes_get_data (proof, &plen);
  const guchar *stored = g_bytes_get_data (stored_key, &slen);

  if (plen != n || slen != n)
    return FALSE;
  g_autoptr(GBytes) sig = hmac (hash, stored_key, auth_message, strlen (auth_message));
  const guchar *s = g_bytes_get_data (sig, NULL);
  guchar client_key[32], digest[32];
  for (gsize i = 0; i < n; i++)
    client_key[i] = p[i] ^ s[i];
  gnutls_hash_fast (dig_of (hash), client_key, n, digest);
  guchar diff = 0;
  for (gsize i = 0; i < n; i++)
    diff |= digest[i] ^ stored[i];
  return diff == 0;
}

GBytes *
myna_scram_server_signature (MynaScramHash hash, GBytes *server_key, const char *auth_message)
{
  return hmac (hash, server_key, auth_message, strlen (auth_message));
}

char *
myna_scram_nonce (gsize bytes)
{
  g_autofree guchar *raw = g_malloc (bytes);

  if (gnutls_rnd (GNUTLS_RND_NONCE, raw, bytes) < 0)
    for (gsize i = 0; i < bytes; i++)
      raw[i] = (guchar) g_random_int ();
  /* base64 is printable and never contains ','. */
  return g_base64_encode (raw, bytes);
}

/* ---- the client's side ------------------------------------------------------- */

void
myna_scram_server_first_clear (MynaScramServerFirst *m)
{
  g_clear_pointer (&m->nonce, g_free);
  g_clear_pointer (&m->salt, g_bytes_unref);
  g_clear_pointer (&m->message, g_free);
  m->iterations = 0;
}

/* A positive decimal of at most ten digits, no sign, no leading zero. */
static gboolean
parse_count (const char *s, guint64 *out)
{
  guint64 v = 0;

  if (s == NULL || *s == '\0' || *s == '0' || strlen (s) > 10)
    return FALSE;
  for (const char *p = s; *p; p++)
    {
      if (!g_ascii_isdigit (*p))
        return FALSE;
      v = v * 10 + (guint64) (*p - '0');
    }
  *out = v;
  return TRUE;
}

gboolean
myna_scram_parse_server_first (const char *msg, gsize len, MynaScramServerFirst *out,
                               GError **error)
{
  g_return_val_if_fail (out != NULL, FALSE);
  g_return_val_if_fail (msg != NULL || len == 0, FALSE);
  memset (out, 0, sizeof *out);
  if (!check_message (msg, len, error))
    return FALSE;

  /* server-first-message = [reserved-mext ","] nonce "," salt ","
   *                        iteration-count ["," extensions] */
  g_auto(GStrv) f = split_fields (msg, len, -1);
  if (g_strv_length (f) < 3)
    return malformed (error, "too few fields");
  if (attr_value (f[0], 'm') != NULL)
    return malformed (error, "unsupported mandatory extension");
  const char *r = attr_value (f[0], 'r');
  const char *s = attr_value (f[1], 's');
  const char *i = attr_value (f[2], 'i');
  guint64 iterations = 0;

  if (!valid_nonce (r))
    return malformed (error, "bad nonce");
  if (s == NULL || *s == '\0')
    return malformed (error, "missing salt");
  if (!parse_count (i, &iterations))
    return malformed (error, "bad iteration count");
  if (iterations > MYNA_SCRAM_MAX_ITERATIONS)
    return malformed (error, "iteration count too large");
  g_autoptr(GBytes) salt = myna_sasl_base64_decode (s, error);
  if (salt == NULL)
    return FALSE;
  if (g_bytes_get_size (salt) == 0)
    return malformed (error, "empty salt");
  out->nonce = g_strdup (r);
  out->salt = g_steal_pointer (&salt);
  out->iterations = (guint) iterations;
  out->message = g_strndup (msg, len);
  return TRUE;
}

gboolean
myna_scram_check_server_final (MynaScramHash hash, GBytes *salted, const char *auth_message,
                               const char *msg, gsize len, GError **error)
{
  g_return_val_if_fail (salted != NULL && auth_message != NULL, FALSE);
  g_return_val_if_fail (msg != NULL || len == 0, FALSE);
  if (!check_message (msg, len, error))
    return FALSE;

  /* server-final-message = (server-error / verifier) ["," extensions] */
  g_auto(GStrv) f = split_fields (msg, len, -1);
  const char *e = attr_value (f[0], 'e');
  const char *v = attr_value (f[0], 'v');

  if (e != NULL)
    {
      g_set_error (error, MYNA_SASL_ERROR, MYNA_SASL_ERROR_NOT_AUTHORIZED,
                   "server error: %.64s", *e != '\0' ? e : "(empty)");
      return FALSE;
    }
  if (v == NULL)
    return malformed (error, "neither v= nor e=");
  g_autoptr(GBytes) verifier = myna_sasl_base64_decode (v, error);
  if (verifier == NULL)
    return FALSE;

  g_autoptr(GBytes) stored_key = NULL;
  g_autoptr(GBytes) server_key = NULL;
  myna_scram_keys (hash, salted, &stored_key, &server_key);
  g_autoptr(GBytes) expected = myna_scram_server_signature (hash, server_key, auth_message);
  gsize n = g_bytes_get_size (expected), vlen;
  const guchar *a = g_bytes_get_data (expected, NULL);
  const guchar *b = g_bytes_get_data (verifier, &vlen);
  guchar diff = vlen != n;

  for (gsize k = 0; k < n && k < vlen; k++)
    diff |= a[k] ^ b[k];
  if (diff != 0)
    {
      g_set_error_literal (error, MYNA_SASL_ERROR, MYNA_SASL_ERROR_NOT_AUTHORIZED,
                           "server signature");
      return FALSE;
    }
  return TRUE;
}

GBytes *
myna_scram_client_proof (MynaScramHash hash, GBytes *salted, const char *auth_message)
{
  g_return_val_if_fail (salted != NULL && auth_message != NULL, NULL);

  g_autoptr(GBytes) client_key = hmac (hash, salted, "Client Key", 10);
  gsize n = myna_scram_hash_size (hash);
  const guchar *ck = g_bytes_get_data (client_key, NULL);
  guchar stored[32], proof[32];

  gnutls_hash_fast (dig_of (hash), ck, n, stored);
  g_autoptr(GBytes) stored_key = g_bytes_new (stored, n);
  g_autoptr(GBytes) sig = hmac (hash, stored_key, auth_message, strlen (auth_message));
  const guchar *s = g_bytes_get_data (sig, NULL);
  for (gsize i = 0; i < n; i++)
    proof[i] = ck[i] ^ s[i];
  GBytes *result = g_bytes_new (proof, n);
  gnutls_memset (proof, 0, sizeof proof);
  gnutls_memset (stored, 0, sizeof stored);
  return result;
}

char *
myna_scram_encode_saslname (const char *name)
{
  g_return_val_if_fail (name != NULL, NULL);

  GString *out = g_string_sized_new (strlen (name));

  for (const char *p = name; *p; p++)
    {
      if (*p == ',')
        g_string_append (out, "=2C");
      else if (*p == '=')
        g_string_append (out, "=3D");
      else
        g_string_append_c (out, *p);
    }
  return g_string_free (out, FALSE);
}
