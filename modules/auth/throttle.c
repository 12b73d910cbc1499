/* throttle.c: the auth module's bookkeeping for throttling logins — the
 * bounded, expiring failure table (see throttle.h for its eviction policy
 * and why), the per-account lines attempts wait in, and the addresses
 * each account logged in from.
 *
 * Why lines.  Refusals are per address and per (address, account) only,
 * so that nobody can lock a user out; per account there is a delay (0.5 s
 * doubling up to `account_delay_max`).  A delay alone slows each answer
 * but not the rate: a guesser on many addresses (each IPv6 /64 is one)
 * sends its guesses in parallel and keeps max_failures guesses per
 * address per window.  So once an account is under the delay, its
 * attempts are evaluated one at a time: the evaluated attempt holds the
 * account's slot until its answer is due (now + delay), and attempts that
 * come meanwhile wait in the account's line, on a timer, never blocking
 * the loop.  However many addresses guess, at most one guess per delay is
 * evaluated on one account, plus those from known addresses (below).
 *
 * Why the owner still gets in.  A password cannot jump the line for being
 * right: evaluating it is the very guess being rationed, and a guesser
 * with a thousand guesses in flight would then learn the right one at
 * once.  What can be told before evaluating is where an attempt comes
 * from:
 *  - a known address — one of the last AUTH_KNOWN_PER_ACCOUNT the account
 *    logged in from successfully — skips the line and gets only the
 *    delay.  A guesser there (the same NAT as the owner) is still held to
 *    max_failures per window by the per-(address, account) refusal.
 *  - a clean address — no failure on the account within the window —
 *    waits ahead of every dirty one (with failures: a guesser's second
 *    guess).  Attempts count as failures from the moment they are
 *    admitted, so an address has at most one clean attempt waiting, and
 *    each clean attempt that reaches the slot and fails makes its address
 *    dirty for the window.
 *  - the line's bound (`account_queue_max` waiting): past it, an attempt
 *    from a dirty address is refused (temporary-auth-failure); a clean
 *    one still waits.  So a correct password is never refused by the
 *    line unless its own address failed on the account within the window
 *    (and is not a known one) while the line is full; the refusals per
 *    address and per pair are as before.  Waiting clean attempts need not
 *    be bounded separately: one per address, each a live connection (the
 *    connection limits), each gone by `auth_timeout` at the latest.
 * The trade-off, which no rule based on what the server sees before
 * evaluating can avoid: the owner on a NEW address is, until its password
 * is evaluated, indistinguishable from a guesser's first guess from a
 * fresh address.  It waits behind the clean attempts ahead of it, one
 * delay each; a guesser that spends a fresh address on every guess, at
 * one per delay (360 an hour at 10 s), keeping more than
 * auth_timeout / delay of them waiting, keeps a new-address owner out
 * until it stops — while the owner's known addresses still get in, and
 * the guesser gets one guess per delay.  Against a guesser reusing its
 * addresses, a new-address owner waits one slot.
 *
 * An attempt that leaves the line before its turn (its connection closed
 * or timed out) was never evaluated: its up-front count is taken back, so
 * the owner's retry from the same address is still clean.  The line goes
 * once its slot is free and nobody waits.
 *
 * Why the known addresses are kept in memory, not in storage: the failure
 * table they answer is in memory too, so a restart drops the delay and
 * the known addresses together, and the owner's first login after it
 * (undelayed) makes its address known again; no storage write per login;
 * and users' addresses are not kept on disk.  Bounded to `max_accounts`
 * accounts, the least recently logged in evicted first; entries are made
 * only by correct passwords, so evicting a victim's takes more than that
 * many successful logins on other accounts, and then it is only slowed
 * as a new address is. */
#include "throttle.h"

#include <string.h>

/* Counts above this share the last bucket of the eviction histogram. */
#define COUNT_BUCKETS 64

typedef struct {
  gint64 since;          /* the first failure of the window */
  guint  count;
  char   key[];          /* the hash table's key points here */
} Entry;

struct _AuthThrottle {
  GHashTable *entries;   /* key (inside the Entry) → Entry* */
  gint64      window_us;
  guint       max_entries;
  guint64     evicted;
};

AuthThrottle *
auth_throttle_new (gint64 window_us, guint max_entries)
{
  AuthThrottle *t = g_new0 (AuthThrottle, 1);

  t->entries = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  t->window_us = window_us;
  t->max_entries = MAX (max_entries, 1);
  return t;
}

void
auth_throttle_free (AuthThrottle *t)
{
  if (t == NULL)
    return;
  g_hash_table_unref (t->entries);
  g_free (t);
}

static gboolean
entry_expired (AuthThrottle *t, Entry *e, gint64 now)
{
  return now - e->since > t->window_us;
}

static Entry *
throttle_lookup (AuthThrottle *t, const char *key, gint64 now)
{
  Entry *e = g_hash_table_lookup (t->entries, key);

  if (e != NULL && entry_expired (t, e, now))
    {
      g_hash_table_remove (t->entries, key);
      e = NULL;
    }
  return e;
}

guint
auth_throttle_count (AuthThrottle *t, const char *key, gint64 now)
{
  Entry *e = throttle_lookup (t, key, now);

  return e != NULL ? e->count : 0;
}

guint
auth_throttle_sweep (AuthThrottle *t, gint64 now)
{
  GHashTableIter it;
  gpointer value;
  guint removed = 0;

  g_hash_table_iter_init (&it, t->entries);
  while (g_hash_table_iter_next (&it, NULL, &value))
    if (entry_expired (t, value, now))
      {
        g_hash_table_iter_remove (&it);
        removed++;
      }
  return removed;
}

/* Newest first. */
static gint
entry_cmp_newest (gconstpointer a, gconstpointer b)
{
  const Entry *ea = *(Entry *const *) a, *eb = *(Entry *const *) b;

  return ea->since < eb->since ? 1 : ea->since > eb->since ? -1 : 0;
}

static guint
bucket_of (const Entry *e)
{
  return MIN (e->count, COUNT_BUCKETS - 1);
}

/* Evicts at least @need entries: every entry in the buckets below the one
 * where the lowest counts add up to @need, then the newest of that one. */
static void
throttle_evict (AuthThrottle *t, guint need)
{
  guint hist[COUNT_BUCKETS] = { 0 }, below = 0, cut = 0;
  GHashTableIter it;
  gpointer value;
  g_autoptr(GPtrArray) ties = g_ptr_array_new ();

  g_hash_table_iter_init (&it, t->entries);
  while (g_hash_table_iter_next (&it, NULL, &value))
    hist[bucket_of (value)]++;
  while (cut < COUNT_BUCKETS - 1 && below + hist[cut] < need)
    below += hist[cut++];
  g_hash_table_iter_init (&it, t->entries);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      guint b = bucket_of (value);
      if (b < cut)
        {
          g_hash_table_iter_remove (&it);
          t->evicted++;
        }
      else if (b == cut)
        g_ptr_array_add (ties, value);
    }
  g_ptr_array_sort (ties, entry_cmp_newest);
  for (guint i = 0; i < ties->len && below < need; i++, below++)
    {
      Entry *e = ties->pdata[i];
      g_hash_table_remove (t->entries, e->key);
      t->evicted++;
    }
}

/* Room for one more entry. */
static void
throttle_make_room (AuthThrottle *t, gint64 now)
{
  if (g_hash_table_size (t->entries) < t->max_entries)
    return;
  auth_throttle_sweep (t, now);
  if (g_hash_table_size (t->entries) < t->max_entries)
    return;
  throttle_evict (t, MAX (t->max_entries / 16, 1));
}

void
auth_throttle_add (AuthThrottle *t, const char *key, gint64 now)
{
  Entry *e = throttle_lookup (t, key, now);

  if (e == NULL)
    {
      gsize len = strlen (key);

      throttle_make_room (t, now);
      e = g_malloc (sizeof (Entry) + len + 1);
      e->since = now;
      e->count = 0;
      memcpy (e->key, key, len + 1);
      g_hash_table_insert (t->entries, e->key, e);
    }
  if (e->count < G_MAXUINT)
    e->count++;
}

void
auth_throttle_take_back (AuthThrottle *t, const char *key, gint64 now)
{
  Entry *e = throttle_lookup (t, key, now);

  if (e != NULL && e->count > 0)
    e->count--;
}

void
auth_throttle_forget (AuthThrottle *t, const char *key)
{
  g_hash_table_remove (t->entries, key);
}

guint
auth_throttle_size (AuthThrottle *t)
{
  return g_hash_table_size (t->entries);
}

guint64
auth_throttle_evicted (AuthThrottle *t)
{
  return t->evicted;
}

/* ---- known addresses -------------------------------------------------------- */

typedef struct {
  GList  lru;                              /* in AuthKnown.lru; data: this */
  char  *addrs[AUTH_KNOWN_PER_ACCOUNT];    /* newest first */
  char   user[];
} Known;

struct _AuthKnown {
  GHashTable *accounts;   /* user (inside the Known) → Known* */
  GQueue      lru;        /* least recently logged in first */
  guint       max_accounts;
};

static void
known_free (gpointer data)
{
  Known *e = data;

  for (guint i = 0; i < AUTH_KNOWN_PER_ACCOUNT; i++)
    g_free (e->addrs[i]);
  g_free (e);
}

AuthKnown *
auth_known_new (guint max_accounts)
{
  AuthKnown *k = g_new0 (AuthKnown, 1);

  k->accounts = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, known_free);
  g_queue_init (&k->lru);
  k->max_accounts = max_accounts;
  return k;
}

void
auth_known_free (AuthKnown *k)
{
  if (k == NULL)
    return;
  g_hash_table_unref (k->accounts);
  g_free (k);
}

void
auth_known_add (AuthKnown *k, const char *user, const char *addr)
{
  Known *e = g_hash_table_lookup (k->accounts, user);
  guint i;

  if (k->max_accounts == 0)
    return;
  if (e != NULL)
    g_queue_unlink (&k->lru, &e->lru);
  else
    {
      gsize len = strlen (user);

      if (g_hash_table_size (k->accounts) >= k->max_accounts)
        {
          Known *old = g_queue_peek_head (&k->lru);
          g_queue_unlink (&k->lru, &old->lru);
          g_hash_table_remove (k->accounts, old->user);
        }
      e = g_malloc0 (sizeof (Known) + len + 1);
      memcpy (e->user, user, len + 1);
      e->lru.data = e;
      g_hash_table_insert (k->accounts, e->user, e);
    }
  g_queue_push_tail_link (&k->lru, &e->lru);
  /* @addr to the front; the oldest falls off the end. */
  for (i = 0; i < AUTH_KNOWN_PER_ACCOUNT - 1 && g_strcmp0 (e->addrs[i], addr) != 0; i++)
    ;
  char *keep = g_strcmp0 (e->addrs[i], addr) == 0 ? e->addrs[i] : NULL;
  if (keep == NULL)
    g_free (e->addrs[i]);
  memmove (e->addrs + 1, e->addrs, i * sizeof (char *));
  e->addrs[0] = keep != NULL ? keep : g_strdup (addr);
}

gboolean
auth_known_has (AuthKnown *k, const char *user, const char *addr)
{
  Known *e = g_hash_table_lookup (k->accounts, user);

  for (guint i = 0; e != NULL && i < AUTH_KNOWN_PER_ACCOUNT; i++)
    if (g_strcmp0 (e->addrs[i], addr) == 0)
      return TRUE;
  return FALSE;
}

guint
auth_known_size (AuthKnown *k)
{
  return g_hash_table_size (k->accounts);
}

/* ---- account lines ---------------------------------------------------------- */

struct _AuthLines {
  GHashTable    *lines;   /* user (inside the AuthLine) → AuthLine* */
  GDestroyNotify timer_free;
};

AuthLines *
auth_lines_new (GDestroyNotify timer_free)
{
  AuthLines *l = g_new0 (AuthLines, 1);

  l->lines = g_hash_table_new (g_str_hash, g_str_equal);
  l->timer_free = timer_free;
  return l;
}

static void
line_free (AuthLines *l, AuthLine *line, GFunc item_free, gpointer data)
{
  gpointer item;

  while ((item = auth_line_pop (line)) != NULL)
    if (item_free != NULL)
      item_free (item, data);
  if (line->timer != NULL && l->timer_free != NULL)
    l->timer_free (line->timer);
  g_free (line);
}

void
auth_lines_free (AuthLines *l, GFunc item_free, gpointer data)
{
  GHashTableIter it;
  gpointer value;

  if (l == NULL)
    return;
  g_hash_table_iter_init (&it, l->lines);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      g_hash_table_iter_steal (&it);
      line_free (l, value, item_free, data);
    }
  g_hash_table_unref (l->lines);
  g_free (l);
}

AuthLine *
auth_lines_get (AuthLines *l, const char *user, gboolean create)
{
  AuthLine *line = g_hash_table_lookup (l->lines, user);
  gsize len;

  if (line != NULL || !create)
    return line;
  len = strlen (user);
  line = g_malloc0 (sizeof (AuthLine) + len + 1);
  memcpy (line->user, user, len + 1);
  g_queue_init (&line->clean);
  g_queue_init (&line->dirty);
  g_hash_table_insert (l->lines, line->user, line);
  return line;
}

void
auth_lines_drop (AuthLines *l, AuthLine *line)
{
  g_hash_table_steal (l->lines, line->user);
  line_free (l, line, NULL, NULL);
}

guint
auth_lines_size (AuthLines *l)
{
  return g_hash_table_size (l->lines);
}

guint
auth_line_waiting (AuthLine *line)
{
  return line->clean.length + line->dirty.length;
}

GList *
auth_line_push (AuthLine *line, gpointer item, gboolean clean)
{
  GQueue *q = clean ? &line->clean : &line->dirty;

  g_queue_push_tail (q, item);
  return q->tail;
}

void
auth_line_unlink (AuthLine *line, GList *link, gboolean clean)
{
  g_queue_delete_link (clean ? &line->clean : &line->dirty, link);
}

gpointer
auth_line_pop (AuthLine *line)
{
  return line->clean.length > 0 ? g_queue_pop_head (&line->clean)
                                : g_queue_pop_head (&line->dirty);
}
