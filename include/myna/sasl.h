/* sasl.h: SASL message parsing and SCRAM computations (RFC 5802, RFC 7677,
 * RFC 9266), free of server state so a client library can use them too.
 *
 * The parsers take the decoded (not base64) SASL message and never trust
 * it: every field is bounded and checked, and a malformed message gives
 * MYNA_SASL_ERROR_MALFORMED.  An empty message (length 0, where the
 * pointer may be NULL, as g_bytes_get_data gives for an empty GBytes) is
 * malformed like any other: a parser that returns FALSE has always set
 * @error. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define MYNA_SASL_ERROR (myna_sasl_error_quark ())
GQuark myna_sasl_error_quark (void);

typedef enum {
  MYNA_SASL_ERROR_MALFORMED,       /* not a valid message */
  MYNA_SASL_ERROR_NOT_AUTHORIZED,  /* wrong credentials */
  MYNA_SASL_ERROR_CHANNEL_BINDING, /* binding data or flag mismatch */
} MynaSaslError;

#define MYNA_SASL_MAX_MESSAGE 4096

typedef enum {
  MYNA_SCRAM_SHA1,
  MYNA_SCRAM_SHA256,
} MynaScramHash;

/* client-first-message, RFC 5802 §7.  Strings are owned. */
typedef struct {
  char   cbind_flag;      /* 'n' (no support), 'y' (supports, not used), 'p' */
  char  *cbind_name;      /* with 'p': "tls-exporter", "tls-server-end-point" */
  char  *authzid;         /* may be NULL */
  char  *username;        /* =2C and =3D decoded */
  char  *nonce;
  char  *gs2_header;      /* "n,," etc., verbatim */
  char  *bare;            /* client-first-message-bare, verbatim */
} MynaScramClientFirst;

/* client-final-message. */
typedef struct {
  GBytes *channel_binding; /* decoded c= (gs2 header + binding data) */
  char   *nonce;
  GBytes *proof;
  char   *without_proof;   /* client-final-message-without-proof */
} MynaScramClientFinal;

void     myna_scram_client_first_clear (MynaScramClientFirst *m);
void     myna_scram_client_final_clear (MynaScramClientFinal *m);
gboolean myna_scram_parse_client_first (const char *msg, gsize len,
                                        MynaScramClientFirst *out,
                                        GError **error);
gboolean myna_scram_parse_client_final (const char *msg, gsize len,
                                        MynaScramClientFinal *out,
                                        GError **error);

/* PLAIN (RFC 4616): authzid NUL authcid NUL passwd. */
gboolean myna_sasl_parse_plain (const char *msg, gsize len, char **authzid,
                                char **authcid, char **password,
                                GError **error);

/* Decodes base64 strictly ("=" alone means empty).  Returns: (transfer
 * full) (nullable) */
GBytes  *myna_sasl_base64_decode (const char *text, GError **error);

/* ---- SCRAM computations ---------------------------------------------------- */

gsize    myna_scram_hash_size (MynaScramHash hash);
/* SaltedPassword = Hi(password, salt, i) (PBKDF2-HMAC).  Slow: call off
 * the main loop. */
GBytes  *myna_scram_salted_password (MynaScramHash hash,
                                     const char *password, GBytes *salt,
                                     guint iterations);
/* StoredKey and ServerKey from a salted password. */
void     myna_scram_keys (MynaScramHash hash, GBytes *salted,
                          GBytes **stored_key, GBytes **server_key);
/* Verifies a client proof: H(proof XOR HMAC(StoredKey, AuthMessage)) ==
 * StoredKey, in constant time. */
gboolean myna_scram_verify_proof (MynaScramHash hash, GBytes *stored_key,
                                  const char *auth_message, GBytes *proof);
/* ServerSignature = HMAC(ServerKey, AuthMessage).  Returns: (transfer full) */
GBytes  *myna_scram_server_signature (MynaScramHash hash,
                                      GBytes *server_key,
                                      const char *auth_message);
/* A random printable nonce of @bytes random bytes.  Returns: (transfer full) */
char    *myna_scram_nonce (gsize bytes);

/* ---- the client's side of SCRAM --------------------------------------------- */

/* The most iterations a client accepts from a server (PBKDF2 runs that
 * many rounds: a hostile server must not make it spin for minutes). */
#define MYNA_SCRAM_MAX_ITERATIONS 1000000

/* server-first-message, RFC 5802 §7.  The caller checks that @nonce
 * starts with the nonce it sent. */
typedef struct {
  char   *nonce;       /* r=: the client's nonce followed by the server's */
  GBytes *salt;        /* s=, decoded, never empty */
  guint   iterations;  /* i=, 1 … MYNA_SCRAM_MAX_ITERATIONS */
  char   *message;     /* the message verbatim (for the AuthMessage) */
} MynaScramServerFirst;

void     myna_scram_server_first_clear (MynaScramServerFirst *m);
gboolean myna_scram_parse_server_first (const char *msg, gsize len,
                                        MynaScramServerFirst *out,
                                        GError **error);
/* Checks a server-final-message: "v=" must be the ServerSignature of
 * @auth_message under the ServerKey of @salted (a mismatch:
 * MYNA_SASL_ERROR_NOT_AUTHORIZED, "server signature"); "e=" is the
 * server's refusal (MYNA_SASL_ERROR_NOT_AUTHORIZED with its value);
 * anything else: MYNA_SASL_ERROR_MALFORMED. */
gboolean myna_scram_check_server_final (MynaScramHash hash, GBytes *salted,
                                        const char *auth_message,
                                        const char *msg, gsize len,
                                        GError **error);
/* ClientProof = ClientKey XOR HMAC(H(ClientKey), AuthMessage), with
 * ClientKey = HMAC(SaltedPassword, "Client Key").  Returns: (transfer full) */
GBytes  *myna_scram_client_proof (MynaScramHash hash, GBytes *salted,
                                  const char *auth_message);
/* A username as a SCRAM saslname: "," → "=2C", "=" → "=3D".
 * Returns: (transfer full) */
char    *myna_scram_encode_saslname (const char *name);

G_END_DECLS
