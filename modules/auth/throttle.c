/* throttle.c: the bounded, expiring failure table of the auth module
 * (see throttle.h for the eviction policy and why). */
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
