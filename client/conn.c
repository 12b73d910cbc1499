/* conn.c: STUB — replaced by the connection's implementation. */
#include "private.h"

struct _MynaClientConn {
  int unused;
};

MynaClientConn *myna_client_conn_new (const MynaClientConnConfig *config, MynaClientSm *sm, const MynaClientConnCallbacks *callbacks, gpointer user_data) { return g_new0 (MynaClientConn, 1); }
void myna_client_conn_free (MynaClientConn *conn) { g_free (conn); }

static void
fail_task (gpointer source, GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_return_new_error (task, MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_CLOSED, "not implemented");
  g_object_unref (task);
}

void myna_client_conn_connect (MynaClientConn *conn, GCancellable *c, GAsyncReadyCallback cb, gpointer ud) { fail_task (conn, c, cb, ud); }
gboolean myna_client_conn_connect_finish (MynaClientConn *conn, GAsyncResult *r, GError **error) { return g_task_propagate_boolean (G_TASK (r), error); }
void myna_client_conn_register (MynaClientConn *conn, const char *u, const char *p, GCancellable *c, GAsyncReadyCallback cb, gpointer ud) { fail_task (conn, c, cb, ud); }
gboolean myna_client_conn_register_finish (MynaClientConn *conn, GAsyncResult *r, char **condition, GError **error) { return g_task_propagate_boolean (G_TASK (r), error); }
void myna_client_conn_login (MynaClientConn *conn, const char *j, const char *p, GCancellable *c, GAsyncReadyCallback cb, gpointer ud) { fail_task (conn, c, cb, ud); }
gboolean myna_client_conn_login_finish (MynaClientConn *conn, GAsyncResult *r, gboolean *resumed, GError **error) { return g_task_propagate_boolean (G_TASK (r), error); }
const char *myna_client_conn_get_bound_jid (MynaClientConn *conn) { return NULL; }
gboolean myna_client_conn_has_feature (MynaClientConn *conn, const char *ns) { return FALSE; }
void myna_client_conn_send (MynaClientConn *conn, MynaStanza *stanza) { }
void myna_client_conn_iq (MynaClientConn *conn, MynaStanza *iq, guint timeout_ms, MynaClientConnIqFunc func, gpointer user_data) { }
void myna_client_conn_close (MynaClientConn *conn) { }
