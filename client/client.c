/* client.c: STUB — replaced by MynaClient's implementation. */
#include "private.h"

struct _MynaClient {
  GObject          parent;
  MynaClientStore *store;
};

G_DEFINE_FINAL_TYPE (MynaClient, myna_client, G_TYPE_OBJECT)

static void
client_finalize (GObject *object)
{
  g_clear_object (&MYNA_CLIENT (object)->store);
  G_OBJECT_CLASS (myna_client_parent_class)->finalize (object);
}

static void
myna_client_class_init (MynaClientClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = client_finalize;
}

static void
myna_client_init (MynaClient *self)
{
}

MynaClient *
myna_client_new (MynaClientStore *store)
{
  return myna_client_new_with_clock (store, NULL);
}

MynaClient *
myna_client_new_with_clock (MynaClientStore *store, MynaClientClock *clock)
{
  MynaClient *c = g_object_new (MYNA_TYPE_CLIENT, NULL);
  c->store = g_object_ref (store);
  return c;
}

const char *myna_client_state_to_string (MynaClientState state) { return "stopped"; }
MynaClientStore *myna_client_get_store (MynaClient *client) { return client->store; }
MynaClientState myna_client_get_state (MynaClient *client) { return MYNA_CLIENT_STATE_STOPPED; }
const char *myna_client_get_bound_jid (MynaClient *client) { return NULL; }
void myna_client_start (MynaClient *client) { }
void myna_client_logout (MynaClient *client) { }
void myna_client_set_network_available (MynaClient *client, gboolean available) { }
char *myna_client_send_message (MynaClient *client, const char *to, const char *body, GError **error) { return g_strdup ("stub"); }
void myna_client_send_presence (MynaClient *client, const char *show, const char *status, gint priority) { }
void myna_client_send_iq (MynaClient *client, const char *iq_xml, guint timeout_ms, GCancellable *c, GAsyncReadyCallback cb, gpointer ud) { }
char *myna_client_send_iq_finish (MynaClient *client, GAsyncResult *r, GError **error) { return NULL; }
void myna_client_roster_set (MynaClient *client, const char *jid, const char *name, const char * const *groups, GCancellable *c, GAsyncReadyCallback cb, gpointer ud) { }
gboolean myna_client_roster_set_finish (MynaClient *client, GAsyncResult *r, GError **error) { return FALSE; }
void myna_client_roster_remove (MynaClient *client, const char *jid, GCancellable *c, GAsyncReadyCallback cb, gpointer ud) { }
gboolean myna_client_roster_remove_finish (MynaClient *client, GAsyncResult *r, GError **error) { return FALSE; }
void myna_client_subscription (MynaClient *client, const char *jid, const char *type) { }
void myna_client_push_enable (MynaClient *client, const char *jid, const char *node, const char *secret, GCancellable *c, GAsyncReadyCallback cb, gpointer ud) { }
gboolean myna_client_push_enable_finish (MynaClient *client, GAsyncResult *r, GError **error) { return FALSE; }
void myna_client_push_disable (MynaClient *client, const char *jid, const char *node, GCancellable *c, GAsyncReadyCallback cb, gpointer ud) { }
gboolean myna_client_push_disable_finish (MynaClient *client, GAsyncResult *r, GError **error) { return FALSE; }
guint myna_client_backoff_delay (guint failures, guint base_ms, guint max_ms, double random) { return base_ms; }
