/* accounts.c: accounts with SCRAM-only password storage.
 *
 * Per account, kv (host, user, "account", "scram") holds
 *   "v1;ITER;SALT;SHA1-STORED;SHA1-SERVER;SHA256-STORED;SHA256-SERVER"
 * (base64 fields), and the host-wide index (host, "", "accounts", user)
 * lists the usernames.  PBKDF2 runs on a worker thread (workers.c); the
 * storage write and the callback happen back on the main loop, as the
 * module that asked, which the job holds meanwhile (see module.c).
 * Workers finish in any order, so the writes of one account's jobs wait
 * for each other and are applied in the order they were asked for: the
 * password acknowledged last is the one stored.
 *
 * Names without an account get decoy credentials (made here, so that the
 * auth module's SCRAM challenge and PLAIN's hashing agree): a salt and
 * keys derived from the name by a keyed hash (the host's key, kv (host,
 * "", "auth", "unknown-user-key"), made once), and an iteration count
 * drawn from the mix the host's accounts store.  That mix is the
 * histogram kv (host, "", "account-stats", "iterations") =
 * "ITER:COUNT,…" (iterhist.c), kept exact here on every create, password
 * change and delete, and counted once from the accounts when absent (a
 * database from before it existed).  Raising `scram_iterations` reaches
 * stored accounts as their owners log in with PLAIN (the password is
 * known then): the credentials are re-hashed at the new count. */
#include "private.h"
#include "iterhist.h"
#include "storage-guard.h"

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <string.h>

#define STORE_ACCOUNT "account"
#define KEY_SCRAM     "scram"
#define STORE_INDEX   "accounts"
#define MAX_PASSWORD  1024
/* Host-wide: the histogram of the stored iteration counts. */
#define STORE_STATS   "account-stats"
#define KEY_ITERATIONS "iterations"
/* Host-wide: the key of unknown names' decoy credentials.  It lives in
 * the auth module's store, where earlier versions made it, so that the
 * decoy salts of a database from before stay what they were. */
#define STORE_DECOY   "auth"
#define KEY_DECOY     "unknown-user-key"
#define DECOY_SALT_LEN 16             /* what real accounts get */

/* RFC 7677 asks for at least 4096; Prosody uses 10000, 2.4 times the work
 * (tests/bench/hashbench: about 0.5-0.8 ms per SHA-256 PBKDF2 at 4096,
 * 1.3-2.1 ms at 10000 here).  Stored credentials keep their own count. */
static guint scram_iterations = 10000;

G_DEFINE_QUARK (myna-account-error-quark, myna_account_error)

void
myna_accounts_set_iterations (guint iterations)
{
  scram_iterations = CLAMP (iterations, 1, 10000000);
}

guint
myna_accounts_get_iterations (void)
{
  return scram_iterations;
}

void
myna_scram_credentials_free (MynaScramCredentials *creds)
{
  if (creds == NULL)
    return;
  g_clear_pointer (&creds->salt, g_bytes_unref);
  g_clear_pointer (&creds->stored_key, g_bytes_unref);
  g_clear_pointer (&creds->server_key, g_bytes_unref);
  g_free (creds);
}

/* ---- the worker job -------------------------------------------------------- */

typedef struct {
  MynaStorage    *storage;
  char           *host;
  char           *user;
  char           *password;
  guint           iterations;    /* for the record to compute */
  char           *record;        /* computed: the stored string */
  char           *stored;        /* check_password: the record checked against;
                                  * an upgrade: the record it may replace */
  gboolean        upgrade;       /* re-hash at a new count, if still @stored */
  MynaScramCredentials *check;   /* for check_password: what to compare to */
  gboolean        matched;
  gboolean        unknown;       /* check_password: no such account */
  gboolean        must_exist;    /* set_password */
  MynaAccountDone done;
  gpointer        user_data;
  GDestroyNotify  destroy;
  MynaModule     *owner;         /* the module asking, held */
  char           *key;           /* "host/user": its place in pending_writes */
  gboolean        hashed;        /* the record is computed; may be written */
} Job;

/* "host/user" → GQueue of that account's write jobs, in the order asked.
 * Main loop only. */
static GHashTable *pending_writes;

static void
job_free (Job *job)
{
  if (job->destroy != NULL)
    {
      MynaModule *previous = myna_module_enter (job->owner);
      job->destroy (job->user_data);
      myna_module_leave (previous);
    }
  myna_module_release (job->owner);
  g_free (job->host);
  g_free (job->user);
  if (job->password != NULL)
    {
      memset (job->password, 0, strlen (job->password));
      g_free (job->password);
    }
  g_free (job->record);
  g_free (job->stored);
  g_free (job->key);
  myna_scram_credentials_free (job->check);
  g_free (job);
}

static char *
b64 (GBytes *b)
{
  gsize len;
  gconstpointer data = g_bytes_get_data (b, &len);
  return g_base64_encode (data, len);
}

/* ---- the iteration histogram ---------------------------------------------- */

/* A storage read failed on a path any login reaches: warns at most once a
 * minute, so that clients cannot flood the log. */
static void
warn_read_failure (const char *host, const char *what, const GError *error)
{
  static gint64 last;
  gint64 now = g_get_monotonic_time ();

  if (last != 0 && now - last < 60 * G_USEC_PER_SEC)
    return;
  last = now;
  g_warning ("accounts of %s: reading %s: %s", host, what, error->message);
}

/* The iteration count of a stored record "v1;ITER;…"; 0 for NULL. */
static guint
record_iterations (const char *record)
{
  if (record == NULL || !g_str_has_prefix (record, "v1;"))
    return 0;
  return (guint) g_ascii_strtoull (record + 3, NULL, 10);
}

/* Counts the iteration counts of @host's accounts (once per database:
 * O(accounts) reads on the main loop).  Returns: (transfer full) (nullable) */
static GArray *
hist_scan (MynaStorage *storage, const char *host)
{
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) users = myna_account_list (storage, host, &error);
  GArray *hist;

  if (users == NULL)
    {
      warn_read_failure (host, "the account list", error);
      return NULL;
    }
  hist = myna_iterhist_new ();
  for (guint i = 0; users[i] != NULL; i++)
    {
      g_autofree char *rec = myna_kv_get (storage, host, users[i], STORE_ACCOUNT, KEY_SCRAM, NULL);
      guint iterations = record_iterations (rec);
      if (iterations > 0)
        myna_iterhist_add (hist, iterations, 1);
    }
  g_info ("accounts of %s: counted the iteration counts of %" G_GUINT64_FORMAT " accounts",
          host, myna_iterhist_total (hist));
  return hist;
}

/* @host's histogram, counted and stored first if the storage has none (or
 * an unreadable one).  Returns: (transfer full) (nullable) on a storage
 * failure. */
static GArray *
hist_load (MynaStorage *storage, const char *host)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *text = myna_kv_get (storage, host, "", STORE_STATS, KEY_ITERATIONS, &error);
  GArray *hist;

  if (error != NULL)
    {
      warn_read_failure (host, "the iteration histogram", error);
      return NULL;
    }
  hist = myna_iterhist_parse (text);
  if (hist != NULL)
    return hist;
  if (text != NULL)
    g_warning ("accounts of %s: unreadable iteration histogram; counting again", host);
  hist = hist_scan (storage, host);
  if (hist != NULL)
    {
      g_autofree char *value = myna_iterhist_format (hist);
      myna_kv_set (storage, host, "", STORE_STATS, KEY_ITERATIONS, value, NULL, NULL, NULL);
    }
  return hist;
}

/* Moves one account from @from to @to iterations (0: none) in @host's
 * histogram, and queues the write. */
static void
hist_change (MynaStorage *storage, const char *host, guint from, guint to)
{
  g_autoptr(GArray) hist = NULL;

  if (from == to)
    return;
  hist = hist_load (storage, host);
  if (hist == NULL)
    return;
  if (from > 0 && !myna_iterhist_add (hist, from, -1))
    g_warning ("accounts of %s: the iteration histogram had no account at %u", host, from);
  if (to > 0)
    myna_iterhist_add (hist, to, 1);
  g_autofree char *value = myna_iterhist_format (hist);
  myna_kv_set (storage, host, "", STORE_STATS, KEY_ITERATIONS, value, NULL, NULL, NULL);
}

/* ---- decoys for names without an account ----------------------------------- */

/* @host's decoy key, made (and queued for storing) the first time.
 * Returns: (transfer full) */
static char *
decoy_key (MynaStorage *storage, const char *host)
{
  g_autoptr(GError) error = NULL;
  char *key = myna_kv_get (storage, host, "", STORE_DECOY, KEY_DECOY, &error);

  if (error != NULL)
    {
      /* Answering with some key beats answering nothing; not stored, so
       * that the real one is not overwritten. */
      warn_read_failure (host, "the decoy key", error);
      return myna_scram_nonce (32);
    }
  if (key == NULL || strlen (key) < 32)
    {
      g_free (key);
      key = myna_scram_nonce (32);
      myna_kv_set (storage, host, "", STORE_DECOY, KEY_DECOY, key, NULL, NULL, NULL);
      g_info ("accounts: made the key of unknown names' SCRAM salts for %s", host);
    }
  return key;
}

/* The first @len bytes of HMAC-SHA-256 (@key) of @label, NUL, @user. */
static GBytes *
decoy_derive (const char *key, const char *label, const char *user, gsize len)
{
  g_autoptr(GHmac) h = g_hmac_new (G_CHECKSUM_SHA256, (const guchar *) key, strlen (key));
  guint8 out[32];
  gsize out_len = sizeof out;

  g_hmac_update (h, (const guchar *) label, (gssize) strlen (label) + 1);
  g_hmac_update (h, (const guchar *) user, -1);
  g_hmac_get_digest (h, out, &out_len);
  return g_bytes_new (out, MIN (len, out_len));
}

/* The iteration count of @user's decoy: where the name's keyed hash falls
 * on the histogram, so that over names the counts come out in the stored
 * accounts' proportions, and one name always gets the same. */
static guint
decoy_iterations (MynaStorage *storage, const char *host, const char *key, const char *user)
{
  g_autoptr(GBytes) h = decoy_derive (key, "iterations", user, 8);
  g_autoptr(GArray) hist = hist_load (storage, host);
  const guint8 *b = g_bytes_get_data (h, NULL);
  guint64 point = 0;

  for (guint i = 0; i < 8; i++)
    point = point << 8 | b[i];
  return hist != NULL ? myna_iterhist_pick (hist, point, scram_iterations) : scram_iterations;
}

MynaScramCredentials *
myna_account_get_decoy_scram (MynaStorage *storage, const char *host, const char *user,
                              MynaScramHash hash)
{
  g_return_val_if_fail (storage != NULL && host != NULL && user != NULL, NULL);
  storage = myna_storage_get_base (storage);   /* a module passes its view */

  g_autofree char *key = decoy_key (storage, host);
  MynaScramCredentials *c = g_new0 (MynaScramCredentials, 1);

  c->hash = hash;
  c->iterations = decoy_iterations (storage, host, key, user);
  c->salt = decoy_derive (key, "salt", user, DECOY_SALT_LEN);
  c->stored_key = decoy_derive (key, "stored-key", user, myna_scram_hash_size (hash));
  c->server_key = decoy_derive (key, "server-key", user, myna_scram_hash_size (hash));
  return c;
}

void
myna_accounts_prepare_host (MynaStorage *storage, const char *host)
{
  GArray *hist = hist_load (storage, host);

  if (hist != NULL)
    g_array_unref (hist);
  g_free (decoy_key (storage, host));
}

/* ---- hashing ---------------------------------------------------------------- */

/* Computes the record for job->password with a fresh salt. */
static void
job_hash_thread (gpointer data)
{
  Job *job = data;
  guchar salt_raw[16];
  g_autoptr(GBytes) salt = NULL;
  GString *rec = g_string_new ("v1;");

  gnutls_rnd (GNUTLS_RND_NONCE, salt_raw, sizeof salt_raw);
  salt = g_bytes_new (salt_raw, sizeof salt_raw);
  g_autofree char *salt64 = b64 (salt);
  g_string_append_printf (rec, "%u;%s", job->iterations, salt64);
  for (MynaScramHash h = MYNA_SCRAM_SHA1; h <= MYNA_SCRAM_SHA256; h++)
    {
      g_autoptr(GBytes) salted = myna_scram_salted_password (h, job->password, salt,
                                                             job->iterations);
      g_autoptr(GBytes) stored = NULL, server = NULL;
      myna_scram_keys (h, salted, &stored, &server);
      g_autofree char *s1 = b64 (stored), *s2 = b64 (server);
      g_string_append_printf (rec, ";%s;%s", s1, s2);
    }
  job->record = g_string_free (rec, FALSE);
}

/* Derives the stored key from job->password with the stored salt. */
static void
job_check_thread (gpointer data)
{
  Job *job = data;
  MynaScramCredentials *cr = job->check;
  g_autoptr(GBytes) salted = myna_scram_salted_password (cr->hash, job->password, cr->salt,
                                                         cr->iterations);
  g_autoptr(GBytes) stored = NULL, server = NULL;

  myna_scram_keys (cr->hash, salted, &stored, &server);
  job->matched = g_bytes_equal (stored, cr->stored_key);
}

static void
job_report (Job *job, const GError *error)
{
  if (job->done != NULL)
    {
      MynaModule *previous = myna_module_enter (job->owner);
      job->done (error, job->user_data);
      myna_module_leave (previous);
    }
}

static void
job_stored (const GError *error, gpointer user_data)
{
  Job *job = user_data;
  job_report (job, error);
}

/* Writes a hashed job's record, or fails it if the account came or went
 * while it waited (an upgrade: if the record changed meanwhile). */
static void
job_write (Job *job)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *old = myna_kv_get (job->storage, job->host, job->user, STORE_ACCOUNT,
                                      KEY_SCRAM, NULL);

  if (job->upgrade && g_strcmp0 (old, job->stored) != 0)
    {
      g_debug ("account %s@%s: changed since the login; not re-hashed", job->user, job->host);
      job_free (job);
      return;
    }
  if (job->must_exist && old == NULL)
    {
      g_set_error (&error, MYNA_ACCOUNT_ERROR, MYNA_ACCOUNT_ERROR_NOT_FOUND,
                   "no account %s@%s", job->user, job->host);
      job_report (job, error);
      job_free (job);
      return;
    }
  if (!job->must_exist && old != NULL)
    {
      g_set_error (&error, MYNA_ACCOUNT_ERROR, MYNA_ACCOUNT_ERROR_EXISTS,
                   "account %s@%s exists", job->user, job->host);
      job_report (job, error);
      job_free (job);
      return;
    }
  if (job->upgrade)
    g_info ("account %s@%s: credentials re-hashed from %u to %u iterations", job->user,
            job->host, record_iterations (old), job->iterations);
  /* The write is the asking module's: it stays held until the end.  The
   * histogram is queued first, so @done runs once both are durable. */
  MynaModule *previous = myna_module_enter (job->owner);
  hist_change (job->storage, job->host, record_iterations (old), job->iterations);
  myna_kv_set (job->storage, job->host, "", STORE_INDEX, job->user, "1", NULL, NULL, NULL);
  myna_kv_set (job->storage, job->host, job->user, STORE_ACCOUNT, KEY_SCRAM, job->record,
               job_stored, job, (GDestroyNotify) job_free);
  myna_module_leave (previous);
}

/* Queues @job behind the account's earlier write jobs. */
static void
job_enqueue (Job *job)
{
  if (pending_writes == NULL)
    pending_writes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  job->key = g_strdup_printf ("%s/%s", job->host, job->user);
  GQueue *q = g_hash_table_lookup (pending_writes, job->key);
  if (q == NULL)
    {
      q = g_queue_new ();
      g_hash_table_insert (pending_writes, g_strdup (job->key), q);
    }
  g_queue_push_tail (q, job);
}

/* Writes the account's jobs from the head of its queue for as long as they
 * are hashed: a job finished early waits for those asked before it. */
static void
job_hashed (gpointer user_data)
{
  Job *job = user_data;
  g_autofree char *key = g_strdup (job->key);
  GQueue *q = g_hash_table_lookup (pending_writes, key);

  job->hashed = TRUE;
  while (!g_queue_is_empty (q) && ((Job *) g_queue_peek_head (q))->hashed)
    {
      Job *head = g_queue_pop_head (q);
      if (g_queue_is_empty (q))
        {
          g_hash_table_remove (pending_writes, key);
          g_queue_free (q);
          job_write (head);
          return;
        }
      job_write (head);
    }
}

static void job_enqueue (Job *job);
static void job_run (Job *job, MynaWorkFunc func, MynaWorkDone ready);
static Job *job_new (MynaStorage *storage, const char *host, const char *user,
                     const char *password, MynaAccountDone done, gpointer user_data,
                     GDestroyNotify destroy);
static gboolean password_ok (const char *password, GError **error);

/* After a correct password on credentials made at another count than
 * `scram_iterations`: re-hashes them at that count (on a worker, as the
 * module that checked), and stores them if the record is still the one
 * checked, so a password changed meanwhile stays. */
static void
job_upgrade (Job *checked)
{
  if (checked->check->iterations == scram_iterations || !password_ok (checked->password, NULL))
    return;
  MynaModule *previous = myna_module_enter (checked->owner);
  Job *job = job_new (checked->storage, checked->host, checked->user, checked->password, NULL,
                      NULL, NULL);
  myna_module_leave (previous);
  job->must_exist = TRUE;
  job->upgrade = TRUE;
  job->stored = g_steal_pointer (&checked->stored);
  job_enqueue (job);
  job_run (job, job_hash_thread, job_hashed);
}

static void
job_checked (gpointer user_data)
{
  Job *job = user_data;
  g_autoptr(GError) error = NULL;

  if (!job->unknown && job->matched)
    job_upgrade (job);
  if (job->unknown)
    g_set_error (&error, MYNA_ACCOUNT_ERROR, MYNA_ACCOUNT_ERROR_NOT_FOUND,
                 "no account %s@%s", job->user, job->host);
  else if (!job->matched)
    g_set_error (&error, MYNA_ACCOUNT_ERROR, MYNA_ACCOUNT_ERROR_FAILED, "wrong password");
  job_report (job, error);
  job_free (job);
}

static Job *
job_new (MynaStorage *storage, const char *host, const char *user, const char *password,
         MynaAccountDone done, gpointer user_data, GDestroyNotify destroy)
{
  Job *job = g_new0 (Job, 1);

  job->storage = storage;
  job->host = g_strdup (host);
  job->user = g_strdup (user);
  job->password = g_strdup (password);
  job->iterations = scram_iterations;
  job->done = done;
  job->user_data = user_data;
  job->destroy = destroy;
  job->owner = myna_module_hold (myna_module_current ());
  return job;
}

/* Fails the job at once (on the main loop) with @error. */
static void
job_fail (Job *job, GError *error)
{
  job_report (job, error);
  g_error_free (error);
  job_free (job);
}

static void
job_run (Job *job, MynaWorkFunc func, MynaWorkDone ready)
{
  myna_work_submit (func, ready, job);
}

/* Normalises @user; sets an error on the job's behalf when invalid. */
static char *
prep_user (const char *user, GError **error)
{
  g_autoptr(GError) local = NULL;
  char *prepped = myna_jid_prep_local (user, &local);

  if (prepped == NULL)
    g_set_error (error, MYNA_ACCOUNT_ERROR, MYNA_ACCOUNT_ERROR_BAD_NAME,
                 "'%s' is not a valid username: %s", user, local->message);
  return prepped;
}

static gboolean
password_ok (const char *password, GError **error)
{
  if (password == NULL || *password == '\0' || strlen (password) > MAX_PASSWORD
      || !g_utf8_validate (password, -1, NULL))
    {
      g_set_error (error, MYNA_ACCOUNT_ERROR, MYNA_ACCOUNT_ERROR_BAD_PASSWORD,
                   "the password must be 1 to %d bytes of UTF-8", MAX_PASSWORD);
      return FALSE;
    }
  return TRUE;
}

static void
account_write (MynaStorage *storage, const char *host, const char *user,
               const char *password, gboolean must_exist, MynaAccountDone done,
               gpointer user_data, GDestroyNotify destroy)
{
  GError *error = NULL;
  g_autofree char *prepped = prep_user (user, &error);
  Job *job = job_new (storage, host, prepped != NULL ? prepped : user, password, done,
                      user_data, destroy);

  job->must_exist = must_exist;
  if (prepped == NULL || !password_ok (password, &error))
    {
      job_fail (job, error);
      return;
    }
  if (myna_account_exists (storage, host, prepped) != must_exist)
    {
      job_fail (job, g_error_new (MYNA_ACCOUNT_ERROR,
                                  must_exist ? MYNA_ACCOUNT_ERROR_NOT_FOUND
                                             : MYNA_ACCOUNT_ERROR_EXISTS,
                                  must_exist ? "no account %s@%s" : "account %s@%s exists",
                                  prepped, host));
      return;
    }
  job_enqueue (job);
  job_run (job, job_hash_thread, job_hashed);
}

void
myna_account_create (MynaStorage *storage, const char *host, const char *user,
                     const char *password, MynaAccountDone done, gpointer user_data,
                     GDestroyNotify destroy)
{
  g_return_if_fail (storage != NULL && host != NULL && user != NULL);
  storage = myna_storage_get_base (storage);   /* a module passes its view */
  account_write (storage, host, user, password, FALSE, done, user_data, destroy);
}

void
myna_account_set_password (MynaStorage *storage, const char *host, const char *user,
                           const char *password, MynaAccountDone done, gpointer user_data,
                           GDestroyNotify destroy)
{
  g_return_if_fail (storage != NULL && host != NULL && user != NULL);
  storage = myna_storage_get_base (storage);   /* a module passes its view */
  account_write (storage, host, user, password, TRUE, done, user_data, destroy);
}

void
myna_account_delete (MynaStorage *storage, const char *host, const char *user,
                     MynaAccountDone done, gpointer user_data, GDestroyNotify destroy)
{
  g_return_if_fail (storage != NULL && host != NULL && user != NULL);
  storage = myna_storage_get_base (storage);   /* a module passes its view */

  g_autofree char *prepped = myna_jid_prep_local (user, NULL);
  if (prepped == NULL || !myna_account_exists (storage, host, prepped))
    {
      g_autoptr(GError) error = g_error_new (MYNA_ACCOUNT_ERROR, MYNA_ACCOUNT_ERROR_NOT_FOUND,
                                             "no account %s@%s", user, host);
      if (done != NULL)
        done (error, user_data);
      if (destroy != NULL)
        destroy (user_data);
      return;
    }
  /* Everything any module keeps under the name goes (keys and archives),
   * and @done runs once that is durable: the histogram and index entry are
   * queued first, and callbacks run in queue order. */
  g_autofree char *old = myna_kv_get (storage, host, prepped, STORE_ACCOUNT, KEY_SCRAM, NULL);
  hist_change (storage, host, record_iterations (old), 0);
  myna_kv_set (storage, host, "", STORE_INDEX, prepped, NULL, NULL, NULL, NULL);
  myna_storage_delete_user (storage, host, prepped, done, user_data, destroy);
}

gboolean
myna_account_exists (MynaStorage *storage, const char *host, const char *user)
{
  g_return_val_if_fail (storage != NULL && host != NULL && user != NULL, FALSE);
  storage = myna_storage_get_base (storage);   /* a module passes its view */

  g_autofree char *rec = myna_kv_get (storage, host, user, STORE_ACCOUNT, KEY_SCRAM, NULL);
  return rec != NULL;
}

char **
myna_account_list (MynaStorage *storage, const char *host, GError **error)
{
  g_autoptr(GHashTable) all = myna_kv_get_all (myna_storage_get_base (storage), host, "",
                                               STORE_INDEX, error);
  g_autoptr(GPtrArray) names = g_ptr_array_new ();
  GHashTableIter it;
  gpointer key;

  if (all == NULL)
    return NULL;
  g_hash_table_iter_init (&it, all);
  while (g_hash_table_iter_next (&it, &key, NULL))
    g_ptr_array_add (names, g_strdup (key));
  myna_ptr_array_sort_strings (names);
  g_ptr_array_add (names, NULL);
  return (char **) g_ptr_array_free (g_steal_pointer (&names), FALSE);
}

/* The credentials for @hash in the stored record @rec (nullable). */
static MynaScramCredentials *
record_parse (const char *rec, const char *host, const char *user, MynaScramHash hash)
{
  if (rec == NULL)
    return NULL;
  g_auto(GStrv) f = g_strsplit (rec, ";", -1);
  if (g_strv_length (f) != 7 || strcmp (f[0], "v1") != 0)
    {
      g_warning ("account %s@%s: unreadable credentials record", user, host);
      return NULL;
    }
  MynaScramCredentials *c = g_new0 (MynaScramCredentials, 1);
  gsize len;
  guchar *d;
  guint off = hash == MYNA_SCRAM_SHA1 ? 3 : 5;

  c->hash = hash;
  c->iterations = (guint) g_ascii_strtoull (f[1], NULL, 10);
  d = g_base64_decode (f[2], &len);
  c->salt = g_bytes_new_take (d, len);
  d = g_base64_decode (f[off], &len);
  c->stored_key = g_bytes_new_take (d, len);
  d = g_base64_decode (f[off + 1], &len);
  c->server_key = g_bytes_new_take (d, len);
  return c;
}

MynaScramCredentials *
myna_account_get_scram (MynaStorage *storage, const char *host, const char *user,
                        MynaScramHash hash)
{
  g_return_val_if_fail (storage != NULL && host != NULL && user != NULL, NULL);
  storage = myna_storage_get_base (storage);   /* a module passes its view */

  g_autofree char *rec = myna_kv_get (storage, host, user, STORE_ACCOUNT, KEY_SCRAM, NULL);
  return record_parse (rec, host, user, hash);
}

void
myna_account_check_password (MynaStorage *storage, const char *host, const char *user,
                             const char *password, MynaAccountDone done, gpointer user_data,
                             GDestroyNotify destroy)
{
  g_return_if_fail (storage != NULL && host != NULL && user != NULL && password != NULL);
  storage = myna_storage_get_base (storage);   /* a module passes its view */

  g_autofree char *prepped = myna_jid_prep_local (user, NULL);
  Job *job = job_new (storage, host, prepped != NULL ? prepped : user, password, done,
                      user_data, destroy);

  if (prepped != NULL)
    job->stored = myna_kv_get (storage, host, prepped, STORE_ACCOUNT, KEY_SCRAM, NULL);
  job->check = record_parse (job->stored, host, job->user, MYNA_SCRAM_SHA256);
  /* No such account: the same hashing as for one — the decoy's, at the
   * count its SCRAM challenge names — against keys nothing matches, so
   * the answer's timing does not tell.  The decoy is made either way: the
   * same reads for both. */
  g_autoptr(MynaScramCredentials) decoy = myna_account_get_decoy_scram (storage, host, job->user,
                                                                        MYNA_SCRAM_SHA256);
  if (job->check == NULL)
    {
      job->unknown = TRUE;
      job->check = g_steal_pointer (&decoy);
    }
  job_run (job, job_check_thread, job_checked);
}
