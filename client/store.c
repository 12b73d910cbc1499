/* store.c: STUB — replaced by the store's implementation (SQLite). */
#include "private.h"

struct _MynaClientStore {
  GObject parent;
  char   *path;
};

G_DEFINE_FINAL_TYPE (MynaClientStore, myna_client_store, G_TYPE_OBJECT)

static void
store_finalize (GObject *object)
{
  g_free (MYNA_CLIENT_STORE (object)->path);
  G_OBJECT_CLASS (myna_client_store_parent_class)->finalize (object);
}

static void
myna_client_store_class_init (MynaClientStoreClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = store_finalize;
}

static void
myna_client_store_init (MynaClientStore *self)
{
}

MynaClientStore *
myna_client_store_new (const char *path, GError **error)
{
  MynaClientStore *s = g_object_new (MYNA_TYPE_CLIENT_STORE, NULL);
  s->path = g_strdup (path);
  return s;
}

const char *myna_client_store_get_path (MynaClientStore *s) { return s->path; }
gboolean myna_client_store_get_account (MynaClientStore *s, char **jid, char **password) { return FALSE; }
gboolean myna_client_store_set_account (MynaClientStore *s, const char *jid, const char *password, GError **error) { return TRUE; }
gboolean myna_client_store_clear_account (MynaClientStore *s, GError **error) { return TRUE; }
char *myna_client_store_get_value (MynaClientStore *s, const char *key) { return NULL; }
gboolean myna_client_store_set_value (MynaClientStore *s, const char *key, const char *value, GError **error) { return TRUE; }
GPtrArray *myna_client_store_get_roster (MynaClientStore *s) { return g_ptr_array_new_with_free_func ((GDestroyNotify) myna_client_roster_item_free); }
char *myna_client_store_get_roster_version (MynaClientStore *s) { return NULL; }
gboolean myna_client_store_replace_roster (MynaClientStore *s, GPtrArray *items, const char *version, GError **error) { return TRUE; }
gboolean myna_client_store_update_roster_item (MynaClientStore *s, const MynaClientRosterItem *item, const char *version, GError **error) { return TRUE; }
gboolean myna_client_store_add_outgoing (MynaClientStore *s, const MynaClientMessage *m, GError **error) { return TRUE; }
gboolean myna_client_store_add_incoming (MynaClientStore *s, const MynaClientMessage *m, const char *key, GError **error) { return TRUE; }
gboolean myna_client_store_set_message_state (MynaClientStore *s, const char *id, MynaClientMessageState state, GError **error) { return TRUE; }
MynaClientMessage *myna_client_store_get_message (MynaClientStore *s, MynaClientDirection d, const char *id) { return NULL; }
GPtrArray *myna_client_store_get_pending (MynaClientStore *s) { return g_ptr_array_new_with_free_func ((GDestroyNotify) myna_client_message_free); }
GPtrArray *myna_client_store_get_messages (MynaClientStore *s, const char *peer, guint limit) { return g_ptr_array_new_with_free_func ((GDestroyNotify) myna_client_message_free); }
gboolean myna_client_store_add_notification (MynaClientStore *s, const MynaClientNotification *n, GError **error) { return TRUE; }
GPtrArray *myna_client_store_get_notifications (MynaClientStore *s) { return g_ptr_array_new_with_free_func ((GDestroyNotify) myna_client_notification_free); }
