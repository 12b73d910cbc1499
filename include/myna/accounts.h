/* accounts.h: user accounts of a virtual host, with passwords stored only
 * as SCRAM salted keys (RFC 5802 / RFC 7677), never in the clear.
 *
 * Accounts live in the storage key–value space (store "account").  Hashing
 * (PBKDF2) runs on a worker thread; completion callbacks run on the main
 * loop.  The auth, register and admin code all go through here. */
#pragma once

#include <glib.h>
#include <myna/storage.h>
#include <myna/sasl.h>

G_BEGIN_DECLS

#define MYNA_ACCOUNT_ERROR (myna_account_error_quark ())
GQuark myna_account_error_quark (void);

typedef enum {
  MYNA_ACCOUNT_ERROR_FAILED,
  MYNA_ACCOUNT_ERROR_EXISTS,       /* creating an account that exists */
  MYNA_ACCOUNT_ERROR_NOT_FOUND,    /* no such account */
  MYNA_ACCOUNT_ERROR_BAD_NAME,     /* the username is not a valid localpart */
  MYNA_ACCOUNT_ERROR_BAD_PASSWORD, /* empty or too long */
} MynaAccountError;

/* The stored SCRAM credentials of one account for one hash. */
typedef struct {
  MynaScramHash hash;
  guint         iterations;
  GBytes       *salt;
  GBytes       *stored_key;
  GBytes       *server_key;
} MynaScramCredentials;

void myna_scram_credentials_free (MynaScramCredentials *creds);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MynaScramCredentials, myna_scram_credentials_free)

/* The PBKDF2 iteration count for new passwords (default 10000).  Stored
 * credentials keep the count they were made with until their owner logs
 * in with a clear-text password (myna_account_check_password matches),
 * which re-hashes them at this count. */
void     myna_accounts_set_iterations (guint iterations);
guint    myna_accounts_get_iterations (void);

typedef void (*MynaAccountDone) (const GError *error, gpointer user_data);

/* Creates @user on @host with @password (hashed off the main loop). */
void     myna_account_create (MynaStorage *storage, const char *host,
                              const char *user, const char *password,
                              MynaAccountDone done, gpointer user_data,
                              GDestroyNotify destroy);
/* Replaces the password of an existing account. */
void     myna_account_set_password (MynaStorage *storage, const char *host,
                                    const char *user, const char *password,
                                    MynaAccountDone done, gpointer user_data,
                                    GDestroyNotify destroy);
/* Deletes the account and everything stored under the user's name (every
 * key–value entry and archive item: myna_storage_delete_user); @done runs
 * once the deletion is durable.  Callers fire MYNA_EVENT_ACCOUNT_DELETED
 * first, for what other accounts keep about this one. */
void     myna_account_delete (MynaStorage *storage, const char *host,
                              const char *user, MynaAccountDone done,
                              gpointer user_data, GDestroyNotify destroy);
gboolean myna_account_exists (MynaStorage *storage, const char *host,
                              const char *user);
/* Usernames of @host, sorted.  Returns: (transfer full) */
char   **myna_account_list (MynaStorage *storage, const char *host,
                            GError **error);
/* The credentials for @hash.  Returns: (transfer full) (nullable) */
MynaScramCredentials *myna_account_get_scram (MynaStorage *storage,
                                              const char *host,
                                              const char *user,
                                              MynaScramHash hash);
/* Credentials for a name with no account, for answering as if it had
 * one: a salt and keys derived from @user by a keyed hash (the host's
 * secret), so the same every time, and an iteration count drawn, by the
 * same hash, from the counts the host's accounts store, in their
 * proportions.  No proof matches them.  Returns: (transfer full) */
MynaScramCredentials *myna_account_get_decoy_scram (MynaStorage *storage,
                                                    const char *host,
                                                    const char *user,
                                                    MynaScramHash hash);
/* Checks a clear-text password (SASL PLAIN) against the stored keys, off
 * the main loop; @done gets NULL on a match, NOT_FOUND or FAILED.  A name
 * with no account costs the hashing of its decoy credentials.  A match on
 * credentials made at another count than myna_accounts_get_iterations()
 * re-hashes them at that count afterwards (off the main loop, stored
 * unless the password changed meanwhile). */
void     myna_account_check_password (MynaStorage *storage, const char *host,
                                      const char *user, const char *password,
                                      MynaAccountDone done, gpointer user_data,
                                      GDestroyNotify destroy);

G_END_DECLS
