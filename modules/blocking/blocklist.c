/* blocklist.c: one user's block list as a hash set (see blocklist.h). */
#include "blocklist.h"

#include <string.h>

struct _BlockList {
  GHashTable *items;     /* normalised JID string (owned by the value) → MynaJid* */
  guint64     lookups;
};

BlockList *
block_list_new (void)
{
  BlockList *list = g_new0 (BlockList, 1);

  list->items = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                       (GDestroyNotify) myna_jid_unref);
  return list;
}

void
block_list_free (BlockList *list)
{
  if (list == NULL)
    return;
  g_hash_table_unref (list->items);
  g_free (list);
}

guint
block_list_size (BlockList *list)
{
  return g_hash_table_size (list->items);
}

static gboolean
block_list_has (BlockList *list, const char *key)
{
  list->lookups++;
  return g_hash_table_contains (list->items, key);
}

gboolean
block_list_add (BlockList *list, MynaJid *jid)
{
  /* The key is the value's own string, so an existing entry is never
   * replaced (that would free the key in use). */
  if (block_list_has (list, myna_jid_to_string (jid)))
    return FALSE;
  g_hash_table_insert (list->items, (gpointer) myna_jid_to_string (jid), myna_jid_ref (jid));
  return TRUE;
}

gboolean
block_list_remove (BlockList *list, MynaJid *jid)
{
  list->lookups++;
  return g_hash_table_remove (list->items, myna_jid_to_string (jid));
}

gboolean
block_list_contains (BlockList *list, MynaJid *jid)
{
  return block_list_has (list, myna_jid_to_string (jid));
}

/* The domain or one of its parents is listed. */
static gboolean
block_list_matches_domain (BlockList *list, const char *domain)
{
  for (const char *d = domain; d != NULL; d = strchr (d, '.'))
    {
      if (*d == '.')
        d++;
      if (*d != '\0' && block_list_has (list, d))
        return TRUE;
    }
  return FALSE;
}

gboolean
block_list_matches (BlockList *list, MynaJid *jid)
{
  const char *local = myna_jid_get_local (jid);
  const char *resource = myna_jid_get_resource (jid);

  if (g_hash_table_size (list->items) == 0)
    return FALSE;
  /* user@domain/resource and user@domain; domain/resource only matches
   * an address with no localpart (XEP-0016 §2.1). */
  if (local != NULL && resource != NULL && block_list_has (list, myna_jid_to_string (jid)))
    return TRUE;
  if (local != NULL && block_list_has (list, myna_jid_bare_string (jid)))
    return TRUE;
  if (local == NULL && resource != NULL && block_list_has (list, myna_jid_to_string (jid)))
    return TRUE;
  return block_list_matches_domain (list, myna_jid_get_domain (jid));
}

static int
block_list_cmp (gconstpointer a, gconstpointer b)
{
  return strcmp (myna_jid_to_string (*(MynaJid **) a), myna_jid_to_string (*(MynaJid **) b));
}

GPtrArray *
block_list_items (BlockList *list)
{
  GPtrArray *items = g_ptr_array_new_full (g_hash_table_size (list->items),
                                           (GDestroyNotify) myna_jid_unref);
  GHashTableIter it;
  gpointer value;

  g_hash_table_iter_init (&it, list->items);
  while (g_hash_table_iter_next (&it, NULL, &value))
    g_ptr_array_add (items, myna_jid_ref (value));
  g_ptr_array_sort (items, block_list_cmp);
  return items;
}

GPtrArray *
block_list_take_all (BlockList *list)
{
  GPtrArray *items = g_ptr_array_new_full (g_hash_table_size (list->items),
                                           (GDestroyNotify) myna_jid_unref);
  GHashTableIter it;
  gpointer value;

  g_hash_table_iter_init (&it, list->items);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      g_ptr_array_add (items, value);
      g_hash_table_iter_steal (&it);
    }
  return items;
}

guint64
block_list_get_lookups (BlockList *list)
{
  return list->lookups;
}
