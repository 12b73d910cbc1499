/* client.c: MynaClient — the task chain connect → register → log in over
 * one MynaClientConn per attempt, the state machine, reconnection with
 * backoff on the client's clock, the outgoing queue through the store,
 * incoming messages, notifications, roster and presence, and the app's
 * IQs (send_iq, roster, XEP-0357 push). */
#include "private.h"
#include <myna/xmlstream.h>

#include <string.h>

#define LOGOUT_WAIT_MS   3000   /* how long logout waits for acks */
#define CLOSE_WAIT_MS    2000   /* how long a politely closed conn lives */

enum {
  PROP_0,
  PROP_STORE,
  PROP_CLOCK,
  PROP_JID,
  PROP_PASSWORD,
  PROP_RESOURCE,
  PROP_SERVER,
  PROP_PORT,
  PROP_TLS,
  PROP_CA_FILE,
  PROP_ACCEPT_CERTIFICATE,
  PROP_AUTO_REGISTER,
  PROP_HEARTBEAT_INTERVAL,
  PROP_HEARTBEAT_TIMEOUT,
  PROP_RECONNECT_BASE,
  PROP_RECONNECT_MAX,
  PROP_IQ_TIMEOUT,
  PROP_RECEIPTS,
  PROP_STATE,
  PROP_BOUND_JID,
  N_PROPS
};

enum {
  SIG_STATE_CHANGED,
  SIG_RECONNECTING,
  SIG_MESSAGE_RECEIVED,
  SIG_MESSAGE_STATE_CHANGED,
  SIG_NOTIFICATION,
  SIG_CREDENTIALS_CLEARED,
  SIG_REGISTERED,
  SIG_ROSTER_CHANGED,
  SIG_PRESENCE,
  N_SIGNALS
};

static GParamSpec *props[N_PROPS];
static guint signals[N_SIGNALS];

typedef struct _Attempt Attempt;

struct _MynaClient {
  GObject          parent;
  MynaClientStore *store;
  MynaClientClock *clock;
  GMainContext    *context;          /* where idles (conn reaping) run */
  GPtrArray       *closing;          /* Attempt*: politely closing, freed by a timeout */
  GRand           *rand;

  /* properties */
  char            *jid;
  char            *password;
  char            *resource;
  char            *server;
  guint            port;
  MynaClientTls    tls;
  char            *ca_file;
  char            *accept_certificate;
  gboolean         auto_register;
  guint            heartbeat_interval;
  guint            heartbeat_timeout;
  guint            reconnect_base;
  guint            reconnect_max;
  guint            iq_timeout;
  gboolean         receipts;

  /* the app's presence, sent after each full login */
  char            *show;
  char            *status;
  gint             priority;

  /* the run */
  MynaClientState  state;
  gboolean         running;          /* between start() and logout/stop */
  gboolean         network_available;
  guint            failures;         /* since the last successful login */
  guint            notauth_in_row;   /* not-authorized answers in a row */
  guint            reconnect_id;     /* the backoff wait (clock timeout) */
  Attempt         *attempt;          /* the current connection, or NULL */
  char            *bound_jid;
  MynaClientSm     sm;
  GList           *iq_calls;         /* IqCall* waiting on the current link */

  /* conns to free outside their own callbacks */
  GPtrArray       *dead;             /* Attempt* */
  GSource         *reap_source;

  /* logout */
  gboolean         logging_out;
  guint            logout_id;        /* the ≤ 3 s ack wait */
  GSource         *logout_idle;
};

G_DEFINE_FINAL_TYPE (MynaClient, myna_client, G_TYPE_OBJECT)

/* One connection attempt: the conn and what the chain needs to go on.
 * Refcounted: the client holds one while it is current, each async
 * operation on the conn one more; client is NULL once it was dropped, so
 * late callbacks know to do nothing. */
struct _Attempt {
  gint            ref;
  MynaClient     *client;            /* borrowed; NULL once dropped */
  MynaClientConn *conn;
  GCancellable   *cancel;
  char           *jid;               /* bare JID to log in as */
  char           *password;
  char           *reg_user;          /* register this username first, or NULL */
  gboolean        given;             /* credentials came from the properties */
  gboolean        store_on_login;    /* store jid/password once logged in */
  gboolean        online;            /* logged in */
  MynaClient     *closer;            /* borrowed: whose `closing` lists it */
  guint           close_id;          /* its CLOSE_WAIT_MS timeout, while closing */
};

/* An IQ sent for the app (or roster_set, push_enable…) on the current link. */
typedef struct {
  gint          ref;
  MynaClient   *client;              /* borrowed; valid while !done */
  GTask        *task;
  GCancellable *cancellable;
  gulong        cancel_id;
  gboolean      want_xml;            /* the task returns the result XML */
  gboolean      done;
} IqCall;

static void attempt_start (MynaClient *client);
static void client_attempt_drop (MynaClient *client, gboolean polite);
static void client_schedule_reconnect (MynaClient *client);

/* ---- backoff ---------------------------------------------------------------------- */

guint
myna_client_backoff_delay (guint failures, guint base_ms, guint max_ms, double random)
{
  guint shift = failures > 0 ? failures - 1 : 0;
  guint64 d;

  if (base_ms == 0)
    return 0;
  if (shift >= 32)
    d = max_ms;
  else
    d = MIN ((guint64) base_ms << shift, (guint64) max_ms);
  if (!(random >= 0.0))          /* also NaN */
    random = 0.0;
  if (random > 1.0)
    random = 1.0;
  /* The product is ≥ 0: truncation is ⌊⌋ (and needs no libm). */
  return (guint) (d - (guint64) ((double) d * random / 4.0));
}

/* ---- state -------------------------------------------------------------------------- */

const char *
myna_client_state_to_string (MynaClientState state)
{
  switch (state)
    {
    case MYNA_CLIENT_STATE_STOPPED:       return "stopped";
    case MYNA_CLIENT_STATE_CONNECTING:    return "connecting";
    case MYNA_CLIENT_STATE_CONNECTED:     return "connected";
    case MYNA_CLIENT_STATE_AUTHENTICATED: return "authenticated";
    case MYNA_CLIENT_STATE_DISCONNECTED:  return "disconnected";
    case MYNA_CLIENT_STATE_RECONNECTING:  return "reconnecting";
    default:                              return "unknown";
    }
}

/* Moves to @state (nothing when already there) and says so. */
static void
client_set_state (MynaClient *client, MynaClientState state, const char *reason)
{
  if (client->state == state)
    return;
  g_debug ("state %s → %s%s%s", myna_client_state_to_string (client->state),
           myna_client_state_to_string (state), reason != NULL ? ": " : "",
           reason != NULL ? reason : "");
  client->state = state;
  g_object_notify_by_pspec (G_OBJECT (client), props[PROP_STATE]);
  g_signal_emit (client, signals[SIG_STATE_CHANGED], 0, (guint) state, reason);
}

/* Sets the bound JID (NULL when offline). */
static void
client_set_bound_jid (MynaClient *client, const char *jid)
{
  if (g_strcmp0 (client->bound_jid, jid) == 0)
    return;
  g_free (client->bound_jid);
  client->bound_jid = g_strdup (jid);
  g_object_notify_by_pspec (G_OBJECT (client), props[PROP_BOUND_JID]);
}

/* The short reason text for a failure of the chain or the link. */
static char *
error_reason (const GError *error)
{
  if (error->domain == MYNA_CLIENT_ERROR)
    {
      switch (error->code)
        {
        case MYNA_CLIENT_ERROR_NOT_AUTHORIZED: return g_strdup ("not-authorized");
        case MYNA_CLIENT_ERROR_TIMEOUT:        return g_strdup ("timeout");
        default:                               return g_strdup (error->message);
        }
    }
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED))
    return g_strdup ("connection refused");
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    return g_strdup ("timeout");
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED)
      || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE))
    return g_strdup ("connection closed");
  return g_strdup (error->message);
}

/* ---- attempts and their conns ------------------------------------------------------- */

static Attempt *
attempt_ref (Attempt *a)
{
  g_atomic_int_inc (&a->ref);
  return a;
}

static void
attempt_unref (Attempt *a)
{
  if (!g_atomic_int_dec_and_test (&a->ref))
    return;
  g_clear_pointer (&a->conn, myna_conn_free);
  g_clear_object (&a->cancel);
  g_free (a->jid);
  g_free (a->password);
  g_free (a->reg_user);
  g_free (a);
}

/* Frees the conns of dropped attempts (called from an idle: never inside
 * a conn's own callback). */
static void
client_reap (MynaClient *client)
{
  while (client->dead->len > 0)
    {
      Attempt *a = g_ptr_array_steal_index (client->dead, 0);
      g_clear_pointer (&a->conn, myna_conn_free);
      attempt_unref (a);
    }
}

/* The idle that reaps. */
static gboolean
client_reap_idle (gpointer data)
{
  MynaClient *client = data;

  g_clear_pointer (&client->reap_source, g_source_unref);
  client_reap (client);
  return G_SOURCE_REMOVE;
}

/* A politely closed conn is freed after CLOSE_WAIT_MS, so that its
 * </stream:stream> gets out. */
static gboolean
attempt_closed_fire (gpointer data)
{
  Attempt *a = data;

  if (a->closer != NULL)
    g_ptr_array_remove (a->closer->closing, a);
  a->closer = NULL;
  a->close_id = 0;
  g_clear_pointer (&a->conn, myna_conn_free);
  return G_SOURCE_REMOVE;
}

/* Completes an IqCall's task (once). */
static void
iq_call_complete (IqCall *call, const char *xml, GError *error)
{
  if (call->done)
    {
      g_clear_error (&error);
      return;
    }
  call->done = TRUE;
  if (call->client != NULL)
    call->client->iq_calls = g_list_remove (call->client->iq_calls, call);
  call->client = NULL;
  if (call->cancel_id != 0)
    {
      g_cancellable_disconnect (call->cancellable, call->cancel_id);
      call->cancel_id = 0;
    }
  if (error != NULL)
    g_task_return_error (call->task, error);
  else if (call->want_xml)
    g_task_return_pointer (call->task, g_strdup (xml), g_free);
  else
    g_task_return_boolean (call->task, TRUE);
  g_clear_object (&call->task);
}

static IqCall *
iq_call_ref (IqCall *call)
{
  g_atomic_int_inc (&call->ref);
  return call;
}

static void
iq_call_unref (gpointer data)
{
  IqCall *call = data;

  if (!g_atomic_int_dec_and_test (&call->ref))
    return;
  g_clear_object (&call->task);
  g_clear_object (&call->cancellable);
  g_free (call);
}

/* Fails every IQ waiting on the current link. */
static void
client_fail_iqs (MynaClient *client, MynaClientError code, const char *why)
{
  while (client->iq_calls != NULL)
    {
      IqCall *call = client->iq_calls->data;
      iq_call_complete (call, NULL, g_error_new_literal (MYNA_CLIENT_ERROR, code, why));
    }
}

/* Drops the current attempt: no more callbacks reach the client from it;
 * its conn is closed (@polite) or cancelled, and freed later. */
static void
client_attempt_drop (MynaClient *client, gboolean polite)
{
  Attempt *a = client->attempt;

  if (a == NULL)
    return;
  client->attempt = NULL;
  a->client = NULL;
  g_cancellable_cancel (a->cancel);
  client_fail_iqs (client, MYNA_CLIENT_ERROR_CLOSED, "the link was lost");
  client_set_bound_jid (client, NULL);
  if (polite && a->conn != NULL)
    {
      myna_conn_close (a->conn);
      a->closer = client;
      g_ptr_array_add (client->closing, a);
      a->close_id = myna_client_clock_add_timeout (client->clock, CLOSE_WAIT_MS,
                                                   attempt_closed_fire, a,
                                                   (GDestroyNotify) attempt_unref);
      return;
    }
  g_ptr_array_add (client->dead, a);
  if (client->reap_source == NULL)
    {
      client->reap_source = g_idle_source_new ();
      g_source_set_static_name (client->reap_source, "myna-client reap");
      g_source_set_callback (client->reap_source, client_reap_idle, client, NULL);
      g_source_attach (client->reap_source, client->context);
    }
}

/* The chain failed (or the link was lost): DISCONNECTED, then a wait. */
static void
client_chain_failed (MynaClient *client, const char *reason)
{
  g_message ("disconnected: %s", reason);
  client_attempt_drop (client, FALSE);
  client->failures++;
  client_set_state (client, MYNA_CLIENT_STATE_DISCONNECTED, reason);
  client_schedule_reconnect (client);
}

/* The same, from a GError. */
static void
client_chain_failed_error (MynaClient *client, const GError *error)
{
  g_autofree char *reason = error_reason (error);

  client_chain_failed (client, reason);
}

/* The backoff wait is over. */
static gboolean
client_reconnect_fire (gpointer data)
{
  MynaClient *client = data;

  client->reconnect_id = 0;
  /* A "state-changed" handler may drop the app's last reference. */
  g_object_ref (client);
  if (client->running && client->attempt == NULL && client->network_available)
    attempt_start (client);
  g_object_unref (client);
  return G_SOURCE_REMOVE;
}

/* Waits before the next attempt (the backoff rule), unless stopped or
 * the network is away. */
static void
client_schedule_reconnect (MynaClient *client)
{
  if (!client->running || client->attempt != NULL || client->reconnect_id != 0
      || !client->network_available)
    return;
  guint delay = myna_client_backoff_delay (MAX (client->failures, 1), client->reconnect_base,
                                           client->reconnect_max, g_rand_double (client->rand));
  g_debug ("next attempt in %u ms (failure %u)", delay, client->failures);
  g_signal_emit (client, signals[SIG_RECONNECTING], 0, delay);
  /* A handler may have logged out or brought the network back. */
  if (!client->running || client->attempt != NULL || client->reconnect_id != 0
      || !client->network_available)
    return;
  client->reconnect_id = myna_client_clock_add_timeout (client->clock, delay,
                                                        client_reconnect_fire, client, NULL);
  client_set_state (client, MYNA_CLIENT_STATE_RECONNECTING, NULL);
}

static void
client_cancel_reconnect (MynaClient *client)
{
  if (client->reconnect_id != 0)
    {
      myna_client_clock_remove (client->clock, client->reconnect_id);
      client->reconnect_id = 0;
    }
}

/* ---- the chain ------------------------------------------------------------------------ */

/* @n random characters of @set. */
static char *
random_string (GRand *rand, const char *set, guint n)
{
  gsize len = strlen (set);
  char *s = g_malloc (n + 1);

  for (guint i = 0; i < n; i++)
    s[i] = set[g_rand_int_range (rand, 0, (gint32) len)];
  s[n] = '\0';
  return s;
}

static void stanza_cb (gpointer user_data, MynaStanza *stanza);
static void acked_cb (gpointer user_data, MynaStanza *stanza);
static void lost_cb (gpointer user_data, MynaClientError code, const char *reason);

static const MynaClientConnCallbacks conn_callbacks = {
  .stanza = stanza_cb,
  .acked = acked_cb,
  .lost = lost_cb,
};

static void chain_connected (GObject *source, GAsyncResult *res, gpointer data);
static void chain_registered (GObject *source, GAsyncResult *res, gpointer data);
static void chain_logged_in (GObject *source, GAsyncResult *res, gpointer data);

/* Stops for good (no reconnection): state STOPPED with @reason. */
static void
client_stop (MynaClient *client, const char *reason)
{
  g_message ("stopped: %s", reason);
  client->running = FALSE;
  client_cancel_reconnect (client);
  client_attempt_drop (client, FALSE);
  client_set_state (client, MYNA_CLIENT_STATE_STOPPED, reason);
}

/* Decides who to log in as (and whether to register first): fills @a;
 * FALSE with @reason when the client cannot go on. */
static gboolean
attempt_resolve_account (MynaClient *client, Attempt *a, char **domain, char **reason)
{
  g_autofree char *jid = NULL;
  g_autofree char *password = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(MynaJid) given = NULL;

  if (myna_client_store_get_account (client->store, &jid, &password))
    {
      g_autoptr(MynaJid) parsed = myna_jid_parse (jid, &error);
      if (parsed == NULL)
        {
          *reason = g_strdup_printf ("stored account: %s", error->message);
          return FALSE;
        }
      a->jid = g_strdup (myna_jid_bare_string (parsed));
      a->password = g_steal_pointer (&password);
      *domain = g_strdup (myna_jid_get_domain (parsed));
      return TRUE;
    }

  if (client->jid != NULL)
    {
      given = myna_jid_parse (client->jid, &error);
      if (given == NULL)
        {
          *reason = g_strdup_printf ("jid: %s", error->message);
          return FALSE;
        }
    }

  if (!client->auto_register)
    {
      if (given == NULL || myna_jid_get_local (given) == NULL || client->password == NULL)
        {
          *reason = g_strdup ("no account");
          return FALSE;
        }
      g_autoptr(MynaJid) bare = myna_jid_get_bare (given);
      if (!myna_client_store_set_account (client->store, myna_jid_to_string (bare),
                                          client->password, &error))
        {
          *reason = g_strdup_printf ("store: %s", error->message);
          return FALSE;
        }
      a->jid = g_strdup (myna_jid_to_string (bare));
      a->password = g_strdup (client->password);
      *domain = g_strdup (myna_jid_get_domain (given));
      return TRUE;
    }

  /* Register first. */
  if (given != NULL && myna_jid_get_local (given) != NULL)
    {
      a->reg_user = g_strdup (myna_jid_get_local (given));
      a->given = client->password != NULL;
      a->password = client->password != NULL
                    ? g_strdup (client->password)
                    : random_string (client->rand, "abcdefghijklmnopqrstuvwxyz"
                                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 24);
      *domain = g_strdup (myna_jid_get_domain (given));
    }
  else
    {
      const char *d = given != NULL ? myna_jid_get_domain (given) : client->server;
      if (d == NULL)
        {
          *reason = g_strdup ("no account");
          return FALSE;
        }
      g_autofree char *norm = myna_jid_prep_domain (d, &error);
      if (norm == NULL)
        {
          *reason = g_strdup_printf ("server: %s", error->message);
          return FALSE;
        }
      a->reg_user = random_string (client->rand, "abcdefghijklmnopqrstuvwxyz0123456789", 12);
      a->password = random_string (client->rand, "abcdefghijklmnopqrstuvwxyz"
                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 24);
      *domain = g_steal_pointer (&norm);
    }
  a->jid = g_strdup_printf ("%s@%s", a->reg_user, *domain);
  return TRUE;
}

/* One attempt: a new conn, then connect. */
static void
attempt_start (MynaClient *client)
{
  g_autofree char *domain = NULL;
  g_autofree char *reason = NULL;

  g_return_if_fail (client->attempt == NULL);
  client_cancel_reconnect (client);

  Attempt *a = g_new0 (Attempt, 1);
  a->ref = 1;
  a->client = client;
  a->cancel = g_cancellable_new ();
  if (!attempt_resolve_account (client, a, &domain, &reason))
    {
      a->client = NULL;
      attempt_unref (a);
      client_stop (client, reason);
      return;
    }
  client->attempt = a;

  client_set_state (client, MYNA_CLIENT_STATE_CONNECTING, NULL);
  if (client->attempt != a)      /* a handler logged out */
    return;

  MynaClientConnConfig config = {
    .tls = client->tls,
    .host = client->server != NULL ? client->server : domain,
    .port = (guint16) client->port,
    .domain = domain,
    .ca_file = client->ca_file,
    .accept_certificate = client->accept_certificate,
    .resource = client->resource,
    .heartbeat_interval = client->heartbeat_interval,
    .heartbeat_timeout = client->heartbeat_timeout,
    .step_timeout = client->iq_timeout,
    .clock = client->clock,
  };
  a->conn = myna_conn_new (&config, &client->sm, &conn_callbacks, a);
  g_debug ("connecting to %s:%u as %s", config.host, config.port, a->jid);
  myna_conn_connect (a->conn, a->cancel, chain_connected, attempt_ref (a));
}

/* Task 3: log in. */
static void
attempt_login (Attempt *a)
{
  myna_conn_login (a->conn, a->jid, a->password, a->cancel, chain_logged_in,
                          attempt_ref (a));
}

/* Task 1 done. */
static void
chain_connected (GObject *source, GAsyncResult *res, gpointer data)
{
  Attempt *a = data;
  MynaClient *client = a->client;
  g_autoptr(GError) error = NULL;

  if (client == NULL)
    {
      attempt_unref (a);
      return;
    }
  g_object_ref (client);
  if (!myna_conn_connect_finish (a->conn, res, &error))
    client_chain_failed_error (client, error);
  else
    {
      client_set_state (client, MYNA_CLIENT_STATE_CONNECTED, NULL);
      if (client->attempt == a)
        {
          if (a->reg_user != NULL)
            {
              g_debug ("registering %s", a->jid);
              myna_conn_register (a->conn, a->reg_user, a->password, a->cancel,
                                         chain_registered, attempt_ref (a));
            }
          else
            attempt_login (a);
        }
    }
  attempt_unref (a);
  g_object_unref (client);
}

/* Task 2 done. */
static void
chain_registered (GObject *source, GAsyncResult *res, gpointer data)
{
  Attempt *a = data;
  MynaClient *client = a->client;
  g_autoptr(GError) error = NULL;
  g_autofree char *condition = NULL;

  if (client == NULL)
    {
      attempt_unref (a);
      return;
    }
  g_object_ref (client);
  if (myna_conn_register_finish (a->conn, res, &condition, &error))
    {
      g_message ("registered %s", a->jid);
      if (!myna_client_store_set_account (client->store, a->jid, a->password, &error))
        {
          g_autofree char *reason = g_strdup_printf ("store: %s", error->message);
          client_chain_failed (client, reason);
        }
      else
        {
          g_signal_emit (client, signals[SIG_REGISTERED], 0, a->jid);
          if (client->attempt == a)
            attempt_login (a);
        }
    }
  else if (a->given && g_error_matches (error, MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_REGISTRATION))
    {
      /* The account may be ours already, or the server has no in-band
       * registration: log in with what we were given. */
      g_message ("registration of %s failed (%s): logging in", a->jid,
                 condition != NULL ? condition : error->message);
      a->store_on_login = TRUE;
      attempt_login (a);
    }
  else if (g_error_matches (error, MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_REGISTRATION))
    {
      g_autofree char *reason = g_strdup_printf ("registration: %s",
                                                 condition != NULL ? condition : error->message);
      client_chain_failed (client, reason);
    }
  else
    client_chain_failed_error (client, error);
  attempt_unref (a);
  g_object_unref (client);
}

/* The credentials were refused: forget them; register anew (at once) or
 * stop. */
static void
client_not_authorized (MynaClient *client)
{
  g_autoptr(GError) error = NULL;

  g_message ("credentials refused: clearing the stored account");
  client_attempt_drop (client, FALSE);
  if (!myna_client_store_clear_account (client->store, &error))
    g_warning ("clearing the account: %s", error->message);
  myna_conn_sm_clear (&client->sm);
  client->notauth_in_row++;
  g_signal_emit (client, signals[SIG_CREDENTIALS_CLEARED], 0, "not-authorized");
  if (!client->running)
    return;
  if (!client->auto_register)
    {
      client_stop (client, "not-authorized");
      return;
    }
  client->failures++;
  client_set_state (client, MYNA_CLIENT_STATE_DISCONNECTED, "not-authorized");
  if (!client->running || client->attempt != NULL)
    return;
  /* Register at once — but only once in a row: given credentials that
   * the server refuses again after a "conflict" would loop. */
  if (client->notauth_in_row == 1 && client->network_available)
    attempt_start (client);
  else
    client_schedule_reconnect (client);
}

static void client_after_login (MynaClient *client, gboolean resumed);

/* Task 3 done. */
static void
chain_logged_in (GObject *source, GAsyncResult *res, gpointer data)
{
  Attempt *a = data;
  MynaClient *client = a->client;
  g_autoptr(GError) error = NULL;
  gboolean resumed = FALSE;

  if (client == NULL)
    {
      attempt_unref (a);
      return;
    }
  g_object_ref (client);
  if (!myna_conn_login_finish (a->conn, res, &resumed, &error))
    {
      if (g_error_matches (error, MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_NOT_AUTHORIZED))
        client_not_authorized (client);
      else
        client_chain_failed_error (client, error);
    }
  else
    {
      a->online = TRUE;
      client->failures = 0;
      client->notauth_in_row = 0;
      if (a->store_on_login
          && !myna_client_store_set_account (client->store, a->jid, a->password, &error))
        g_warning ("storing the account: %s", error->message);
      g_message ("online as %s%s", myna_conn_get_bound_jid (a->conn),
                 resumed ? " (resumed)" : "");
      client_set_bound_jid (client, myna_conn_get_bound_jid (a->conn));
      /* What must go again goes BEFORE the app hears AUTHENTICATED: a
       * stanza its handler sends would otherwise land in sm->unacked
       * before the old session's entries are taken out of it (and a
       * message be sent twice, the server's acks shifted onto the
       * wrong stanzas). */
      if (client->attempt == a && !client->logging_out)
        client_after_login (client, resumed);
      if (client->attempt == a)
        client_set_state (client, MYNA_CLIENT_STATE_AUTHENTICATED, NULL);
    }
  attempt_unref (a);
  g_object_unref (client);
}

/* ---- outgoing ---------------------------------------------------------------------------- */

/* The <message/> stanza of a stored outgoing message, or NULL when its
 * text cannot be carried in XML. */
static MynaStanza *
client_build_message (MynaClient *client, const char *id, const char *to, const char *body)
{
  MynaStanza *m = myna_stanza_build ("<message type='chat' to='%s' id='%s'><body>%s</body>"
                                     "<origin-id xmlns='" MYNA_CLIENT_NS_SID "' id='%s'/>"
                                     "</message>", to, id, body, id);
  if (m != NULL && client->receipts)
    myna_stanza_add_child (m, "request", MYNA_CLIENT_NS_RECEIPTS);
  return m;
}

/* Moves a stored outgoing message and tells the app when it moved. */
static void
client_message_state (MynaClient *client, const char *id, MynaClientMessageState state)
{
  g_autoptr(GError) error = NULL;

  if (myna_client_store_set_message_state (client->store, id, state, &error))
    g_signal_emit (client, signals[SIG_MESSAGE_STATE_CHANGED], 0, id, (guint) state);
  else if (error != NULL)
    g_warning ("message %s: %s", id, error->message);
}

/* Whether stanzas can go out now. */
static gboolean
client_online (MynaClient *client)
{
  return client->attempt != NULL && client->attempt->online && client->attempt->conn != NULL;
}

/* Sends one stored message on the current link: SENT. */
static void
client_send_stored (MynaClient *client, const MynaClientMessage *m)
{
  g_autoptr(MynaStanza) stanza = client_build_message (client, m->id, m->peer, m->body);

  if (stanza == NULL)
    {
      g_warning ("message %s cannot be sent: its text is not XML", m->id);
      client_message_state (client, m->id, MYNA_CLIENT_MESSAGE_FAILED);
      return;
    }
  myna_conn_send (client->attempt->conn, stanza);
  client_message_state (client, m->id, MYNA_CLIENT_MESSAGE_SENT);
}

/* Sends the pending messages, oldest first: QUEUED only, or SENT too. */
static void
client_send_pending (MynaClient *client, gboolean sent_too)
{
  g_autoptr(GPtrArray) pending = myna_client_store_get_pending (client->store);

  g_ptr_array_set_free_func (pending, (GDestroyNotify) myna_client_message_free);
  for (guint i = 0; i < pending->len && client_online (client); i++)
    {
      const MynaClientMessage *m = g_ptr_array_index (pending, i);
      if (m->state == MYNA_CLIENT_MESSAGE_QUEUED
          || (sent_too && m->state == MYNA_CLIENT_MESSAGE_SENT))
        client_send_stored (client, m);
    }
}

/* The app's presence stanza. */
static MynaStanza *
client_build_presence (MynaClient *client)
{
  MynaStanza *p = myna_stanza_new ("presence", MYNA_NS_CLIENT);

  if (client->show != NULL)
    myna_stanza_add_text_child (p, "show", client->show);
  if (client->status != NULL)
    myna_stanza_add_text_child (p, "status", client->status);
  if (client->priority != 0)
    {
      char buf[16];
      g_snprintf (buf, sizeof buf, "%d", client->priority);
      myna_stanza_add_text_child (p, "priority", buf);
    }
  return p;
}

static void roster_result (gpointer user_data, MynaStanza *result, const GError *error);

/* The roster get of a full login (with the stored version when the
 * server versions rosters). */
static void
client_roster_get (MynaClient *client)
{
  g_autoptr(MynaStanza) iq = myna_stanza_build ("<iq type='get'><query xmlns='"
                                                MYNA_CLIENT_NS_ROSTER "'/></iq>");
  Attempt *a = client->attempt;

  if (myna_conn_has_feature (a->conn, "urn:xmpp:features:rosterver"))
    {
      g_autofree char *ver = myna_client_store_get_roster_version (client->store);
      myna_stanza_set_attr (myna_stanza_get_child (iq, "query", MYNA_CLIENT_NS_ROSTER), "ver",
                            ver != NULL ? ver : "");
    }
  myna_conn_iq (a->conn, iq, 0, roster_result, attempt_ref (a));
}

/* After a login: what must go (again), the roster, the presence. */
static void
client_after_login (MynaClient *client, gboolean resumed)
{
  if (resumed)
    {
      /* The conn sent sm->unacked again itself. */
      client_send_pending (client, FALSE);
      return;
    }
  /* A new session: what the old one did not get acknowledged goes again
   * (same ids: the receivers dedupe). */
  MynaStanza *s;
  while ((s = g_queue_pop_head (&client->sm.unacked)) != NULL)
    {
      const char *id = myna_stanza_get_id (s);
      if (g_strcmp0 (myna_stanza_get_name (s), "message") == 0 && id != NULL)
        {
          g_autoptr(MynaClientMessage) m =
              myna_client_store_get_message (client->store, MYNA_CLIENT_DIRECTION_OUT, id);
          if (m != NULL && m->state == MYNA_CLIENT_MESSAGE_SENT)
            client_message_state (client, id, MYNA_CLIENT_MESSAGE_QUEUED);
        }
      myna_stanza_unref (s);
    }
  if (!client_online (client))
    return;
  client_roster_get (client);
  g_autoptr(MynaStanza) presence = client_build_presence (client);
  myna_conn_send (client->attempt->conn, presence);
  client_send_pending (client, TRUE);
}

/* ---- incoming ----------------------------------------------------------------------------- */

/* A roster <item/> as a record, or NULL when it has no usable JID. */
static MynaClientRosterItem *
roster_item_parse (MynaStanza *item)
{
  const char *jid = myna_stanza_get_attr (item, "jid");
  g_autoptr(GError) error = NULL;

  if (jid == NULL)
    return NULL;
  g_autoptr(MynaJid) parsed = myna_jid_parse (jid, &error);
  if (parsed == NULL)
    {
      g_message ("roster item %s skipped: %s", jid, error->message);
      return NULL;
    }
  MynaClientRosterItem *r = g_new0 (MynaClientRosterItem, 1);
  GPtrArray *groups = g_ptr_array_new ();

  r->jid = g_strdup (myna_jid_bare_string (parsed));
  r->name = g_strdup (myna_stanza_get_attr (item, "name"));
  r->subscription = g_strdup (myna_stanza_get_attr (item, "subscription") != NULL
                              ? myna_stanza_get_attr (item, "subscription") : "none");
  r->ask = g_strdup (myna_stanza_get_attr (item, "ask"));
  for (guint i = 0; i < myna_stanza_get_n_children (item); i++)
    {
      MynaStanza *g = myna_stanza_get_child_nth (item, i);
      if (!myna_stanza_is_text (g) && g_strcmp0 (myna_stanza_get_name (g), "group") == 0)
        g_ptr_array_add (groups, g_strdup (myna_stanza_get_text (g)));
    }
  g_ptr_array_add (groups, NULL);
  r->groups = (char **) g_ptr_array_free (groups, FALSE);
  return r;
}

/* The answer to the roster get. */
static void
roster_result (gpointer user_data, MynaStanza *result, const GError *error)
{
  Attempt *a = user_data;
  MynaClient *client = a->client;

  if (client == NULL)
    {
      attempt_unref (a);
      return;
    }
  g_object_ref (client);
  if (error != NULL)
    g_message ("roster get failed: %s", error->message);
  else
    {
      MynaStanza *query = myna_stanza_get_child (result, "query", MYNA_CLIENT_NS_ROSTER);
      if (query == NULL)
        g_debug ("roster unchanged");
      else
        {
          g_autoptr(GPtrArray) items =
              g_ptr_array_new_with_free_func ((GDestroyNotify) myna_client_roster_item_free);
          g_autoptr(GError) store_error = NULL;

          for (guint i = 0; i < myna_stanza_get_n_children (query); i++)
            {
              MynaStanza *item = myna_stanza_get_child_nth (query, i);
              MynaClientRosterItem *r;
              if (!myna_stanza_is_text (item)
                  && g_strcmp0 (myna_stanza_get_name (item), "item") == 0
                  && (r = roster_item_parse (item)) != NULL)
                g_ptr_array_add (items, r);
            }
          if (!myna_client_store_replace_roster (client->store, items,
                                                 myna_stanza_get_attr (query, "ver"),
                                                 &store_error))
            g_warning ("storing the roster: %s", store_error->message);
          else
            g_signal_emit (client, signals[SIG_ROSTER_CHANGED], 0);
        }
    }
  attempt_unref (a);
  g_object_unref (client);
}

/* Sends @stanza on the current link when there is one. */
static void
client_send (MynaClient *client, MynaStanza *stanza)
{
  if (client->attempt != NULL && client->attempt->conn != NULL)
    myna_conn_send (client->attempt->conn, stanza);
}

/* Answers an iq with an error (type cancel). */
static void
client_iq_error (MynaClient *client, MynaStanza *iq, const char *condition)
{
  g_autoptr(MynaStanza) e = myna_stanza_new_error (iq, MYNA_ERROR_TYPE_CANCEL, condition, NULL);

  client_send (client, e);
}

/* Our bare JID (from the bound JID), or NULL. */
static char *
client_own_bare (MynaClient *client)
{
  if (client->bound_jid == NULL)
    return NULL;
  g_autoptr(MynaJid) j = myna_jid_parse (client->bound_jid, NULL);
  return j != NULL ? g_strdup (myna_jid_bare_string (j)) : NULL;
}

/* A roster push (RFC 6121 §2.1.6). */
static void
client_roster_push (MynaClient *client, MynaStanza *iq, MynaStanza *query)
{
  const char *from = myna_stanza_get_from (iq);
  g_autofree char *own = client_own_bare (client);
  g_autoptr(GError) error = NULL;

  if (from != NULL)
    {
      g_autoptr(MynaJid) f = myna_jid_parse (from, NULL);
      if (f == NULL || own == NULL || g_strcmp0 (myna_jid_to_string (f), own) != 0)
        {
          g_message ("roster push from %s ignored", from);
          client_iq_error (client, iq, "service-unavailable");
          return;
        }
    }
  MynaStanza *item = myna_stanza_get_child (query, "item", NULL);
  g_autoptr(MynaClientRosterItem) r = item != NULL ? roster_item_parse (item) : NULL;
  if (r == NULL)
    {
      g_message ("roster push without a usable item");
      client_iq_error (client, iq, "bad-request");
      return;
    }
  g_autoptr(MynaStanza) result = myna_stanza_new_iq_result (iq);
  if (!myna_client_store_update_roster_item (client->store, r,
                                             myna_stanza_get_attr (query, "ver"), &error))
    {
      g_warning ("storing a roster push: %s", error->message);
      client_iq_error (client, iq, "internal-server-error");
      return;
    }
  client_send (client, result);
  g_signal_emit (client, signals[SIG_ROSTER_CHANGED], 0);
}

/* Whether @from (a stanza's 'from', NULL: the server) is our server or
 * our own account: who may send androidpn notifications (modules/push
 * sends them from the host's domain). */
static gboolean
client_from_server_or_self (MynaClient *client, const char *from)
{
  g_autoptr(MynaJid) own = client->bound_jid != NULL
                             ? myna_jid_parse (client->bound_jid, NULL) : NULL;
  g_autoptr(MynaJid) f = from != NULL ? myna_jid_parse (from, NULL) : NULL;

  if (from == NULL)
    return TRUE;
  if (f == NULL || own == NULL)
    return FALSE;
  if (myna_jid_get_local (f) == NULL && myna_jid_get_resource (f) == NULL)
    return g_strcmp0 (myna_jid_get_domain (f), myna_jid_get_domain (own)) == 0;
  return myna_jid_is_bare (f) && g_strcmp0 (myna_jid_to_string (f),
                                            myna_jid_bare_string (own)) == 0;
}

/* An androidpn notification: stored once, always answered. */
static void
client_androidpn (MynaClient *client, MynaStanza *iq, MynaStanza *n)
{
  g_autoptr(GError) error = NULL;
  const char *id = myna_stanza_get_child_text (n, "id");

  if (!client_from_server_or_self (client, myna_stanza_get_from (iq)))
    {
      g_message ("androidpn notification from %s ignored: not our server",
                 myna_stanza_get_from (iq));
      client_iq_error (client, iq, "service-unavailable");
      return;
    }
  if (id == NULL || *id == '\0')
    {
      g_message ("androidpn notification without an id from %s",
                 myna_stanza_get_from (iq) != NULL ? myna_stanza_get_from (iq) : "the server");
      client_iq_error (client, iq, "bad-request");
      return;
    }
  MynaClientNotification rec = {
    .id = (char *) id,
    .from = (char *) myna_stanza_get_from (iq),
    .api_key = (char *) myna_stanza_get_child_text (n, "apiKey"),
    .title = (char *) myna_stanza_get_child_text (n, "title"),
    .message = (char *) myna_stanza_get_child_text (n, "message"),
    .uri = (char *) myna_stanza_get_child_text (n, "uri"),
    .timestamp = g_get_real_time (),
  };
  gboolean is_new = myna_client_store_add_notification (client->store, &rec, &error);
  if (error != NULL)
    {
      g_warning ("storing notification %s: %s", id, error->message);
      client_iq_error (client, iq, "internal-server-error");
      return;
    }
  g_autoptr(MynaStanza) result = myna_stanza_new_iq_result (iq);
  client_send (client, result);
  if (is_new)
    g_signal_emit (client, signals[SIG_NOTIFICATION], 0, &rec);
}

/* An iq get/set from the server or a peer. */
static void
client_handle_iq (MynaClient *client, MynaStanza *iq)
{
  const char *type = myna_stanza_get_type (iq);
  MynaStanza *child;

  if (g_strcmp0 (type, "set") == 0
      && (child = myna_stanza_get_child (iq, "query", MYNA_CLIENT_NS_ROSTER)) != NULL)
    client_roster_push (client, iq, child);
  else if (g_strcmp0 (type, "set") == 0
           && (child = myna_stanza_get_child (iq, "notification", MYNA_CLIENT_NS_ANDROIDPN)) != NULL)
    client_androidpn (client, iq, child);
  else if (g_strcmp0 (type, "get") == 0 || g_strcmp0 (type, "set") == 0)
    client_iq_error (client, iq, "service-unavailable");
}

/* The first child @name in @ns with by=@by (XEP-0359 stanza-id), or NULL. */
static MynaStanza *
find_stanza_id (MynaStanza *m, const char *by)
{
  if (by == NULL)
    return NULL;
  for (guint i = 0; i < myna_stanza_get_n_children (m); i++)
    {
      MynaStanza *c = myna_stanza_get_child_nth (m, i);
      if (!myna_stanza_is_text (c) && g_strcmp0 (myna_stanza_get_name (c), "stanza-id") == 0
          && g_strcmp0 (myna_stanza_get_ns (c), MYNA_CLIENT_NS_SID) == 0
          && g_strcmp0 (myna_stanza_get_attr (c, "by"), by) == 0)
        return c;
    }
  return NULL;
}

/* A received message: errors for ours, receipts, bodies (dedupe, store,
 * signal, answer the receipt request). */
static void
client_handle_message (MynaClient *client, MynaStanza *m)
{
  const char *type = myna_stanza_get_type (m);
  const char *id = myna_stanza_get_id (m);
  const char *from = myna_stanza_get_from (m);
  g_autoptr(GError) error = NULL;

  if (g_strcmp0 (type, "error") == 0)
    {
      if (id != NULL)
        {
          g_autoptr(MynaClientMessage) ours =
              myna_client_store_get_message (client->store, MYNA_CLIENT_DIRECTION_OUT, id);
          if (ours != NULL)
            {
              g_message ("message %s bounced", id);
              client_message_state (client, id, MYNA_CLIENT_MESSAGE_FAILED);
            }
        }
      return;
    }

  MynaStanza *received = myna_stanza_get_child (m, "received", MYNA_CLIENT_NS_RECEIPTS);
  if (received != NULL && myna_stanza_get_attr (received, "id") != NULL)
    {
      const char *rid = myna_stanza_get_attr (received, "id");
      g_autoptr(MynaClientMessage) ours =
          myna_client_store_get_message (client->store, MYNA_CLIENT_DIRECTION_OUT, rid);
      g_autoptr(MynaJid) rfrom = from != NULL ? myna_jid_parse (from, NULL) : NULL;
      g_autoptr(MynaJid) rpeer = ours != NULL ? myna_jid_parse (ours->peer, NULL) : NULL;
      /* Only its recipient says it was delivered (not any peer that
       * learnt the id). */
      if (ours != NULL && rfrom != NULL && rpeer != NULL
          && g_strcmp0 (myna_jid_bare_string (rfrom), myna_jid_bare_string (rpeer)) == 0)
        client_message_state (client, rid, MYNA_CLIENT_MESSAGE_DELIVERED);
      else if (ours != NULL)
        g_message ("receipt for %s from %s ignored: not its recipient", rid,
                   from != NULL ? from : "the server");
    }

  MynaStanza *body = myna_stanza_get_child (m, "body", NULL);
  if (body == NULL)
    return;

  g_autofree char *own = client_own_bare (client);
  g_autofree char *peer = NULL;
  if (from == NULL)
    peer = g_strdup (own != NULL ? own : "");
  else if (type == NULL || g_strcmp0 (type, "chat") == 0 || g_strcmp0 (type, "normal") == 0)
    {
      g_autoptr(MynaJid) f = myna_jid_parse (from, NULL);
      peer = g_strdup (f != NULL ? myna_jid_bare_string (f) : from);
    }
  else
    peer = g_strdup (from);

  MynaStanza *delay = myna_stanza_get_child (m, "delay", MYNA_CLIENT_NS_DELAY);
  const char *stamp = delay != NULL ? myna_stanza_get_attr (delay, "stamp") : NULL;
  gint64 timestamp = g_get_real_time ();
  if (stamp != NULL)
    {
      g_autoptr(GDateTime) dt = g_date_time_new_from_iso8601 (stamp, NULL);
      if (dt != NULL)
        timestamp = g_date_time_to_unix (dt) * G_USEC_PER_SEC + g_date_time_get_microsecond (dt);
    }

  MynaStanza *sid = find_stanza_id (m, own);
  MynaStanza *origin = myna_stanza_get_child (m, "origin-id", MYNA_CLIENT_NS_SID);
  const char *stanza_id = sid != NULL ? myna_stanza_get_attr (sid, "id") : NULL;
  const char *origin_id = origin != NULL ? myna_stanza_get_attr (origin, "id") : NULL;
  g_autofree char *key = NULL;
  /* The sender's origin-id first: a copy the sender sent again (its
   * resumption failed) carries the same origin-id but gets a NEW
   * stanza-id from our server's archive.  Keys are per peer (the store's
   * UNIQUE(direction, peer, dedupe)), so a peer that reuses or forges
   * ids can only hide its own messages. */
  if (origin_id != NULL)
    key = g_strconcat ("origin:", origin_id, NULL);
  else if (stanza_id != NULL)
    key = g_strdup (stanza_id);
  else if (id != NULL)
    key = g_strconcat ("id:", id, NULL);
  else
    {
      g_autofree char *all = g_strconcat (from != NULL ? from : "", "\n",
                                          myna_stanza_get_text (body), "\n",
                                          stamp != NULL ? stamp : "", NULL);
      g_autofree char *sum = g_compute_checksum_for_string (G_CHECKSUM_SHA1, all, -1);
      key = g_strconcat ("noid:", sum, NULL);
    }

  MynaClientMessage rec = {
    .id = (char *) (id != NULL ? id : key),
    .direction = MYNA_CLIENT_DIRECTION_IN,
    .peer = peer,
    .body = (char *) myna_stanza_get_text (body),
    .type = (char *) (type != NULL ? type : "normal"),
    .stanza_id = (char *) stanza_id,
    .state = MYNA_CLIENT_MESSAGE_RECEIVED,
    .timestamp = timestamp,
  };
  gboolean is_new = myna_client_store_add_incoming (client->store, &rec, key, &error);
  if (error != NULL)
    g_warning ("storing a message from %s: %s", peer, error->message);

  /* The receipt goes out for duplicates too: the first one may be lost. */
  if (client->receipts && error == NULL && id != NULL && from != NULL
      && g_strcmp0 (type, "groupchat") != 0
      && myna_stanza_get_child (m, "request", MYNA_CLIENT_NS_RECEIPTS) != NULL)
    {
      g_autofree char *rid = g_uuid_string_random ();
      g_autoptr(MynaStanza) receipt = myna_stanza_build (
          "<message to='%s' id='%s'><received xmlns='" MYNA_CLIENT_NS_RECEIPTS "' id='%s'/>"
          "</message>", from, rid, id);
      if (receipt != NULL)
        client_send (client, receipt);
    }
  if (is_new)
    g_signal_emit (client, signals[SIG_MESSAGE_RECEIVED], 0, &rec);
}

/* An incoming presence: told to the app. */
static void
client_handle_presence (MynaClient *client, MynaStanza *p)
{
  g_signal_emit (client, signals[SIG_PRESENCE], 0, myna_stanza_get_from (p),
                 myna_stanza_get_type (p), myna_stanza_get_child_text (p, "show"),
                 myna_stanza_get_child_text (p, "status"));
}

/* conn: a stanza after login. */
static void
stanza_cb (gpointer user_data, MynaStanza *stanza)
{
  Attempt *a = user_data;
  MynaClient *client = a->client;
  const char *name = myna_stanza_get_name (stanza);

  if (client == NULL)
    return;
  g_object_ref (client);
  if (g_strcmp0 (name, "message") == 0)
    client_handle_message (client, stanza);
  else if (g_strcmp0 (name, "presence") == 0)
    client_handle_presence (client, stanza);
  else if (g_strcmp0 (name, "iq") == 0)
    client_handle_iq (client, stanza);
  g_object_unref (client);
}

static void client_logout_finish (MynaClient *client);

/* Finishes the logout from an idle (not inside a conn callback). */
static gboolean
client_logout_idle (gpointer data)
{
  MynaClient *client = data;

  g_clear_pointer (&client->logout_idle, g_source_unref);
  g_object_ref (client);
  client_logout_finish (client);
  g_object_unref (client);
  return G_SOURCE_REMOVE;
}

static void
client_logout_soon (MynaClient *client)
{
  if (client->logout_idle != NULL)
    return;
  client->logout_idle = g_idle_source_new ();
  g_source_set_static_name (client->logout_idle, "myna-client logout");
  g_source_set_callback (client->logout_idle, client_logout_idle, client, NULL);
  g_source_attach (client->logout_idle, client->context);
}

/* conn: the server acknowledged @stanza. */
static void
acked_cb (gpointer user_data, MynaStanza *stanza)
{
  Attempt *a = user_data;
  MynaClient *client = a->client;
  const char *id = myna_stanza_get_id (stanza);

  if (client == NULL)
    return;
  g_object_ref (client);
  if (g_strcmp0 (myna_stanza_get_name (stanza), "message") == 0 && id != NULL)
    {
      g_autoptr(MynaClientMessage) ours =
          myna_client_store_get_message (client->store, MYNA_CLIENT_DIRECTION_OUT, id);
      if (ours != NULL)
        client_message_state (client, id, MYNA_CLIENT_MESSAGE_ACKED);
    }
  if (client->logging_out && g_queue_is_empty (&client->sm.unacked))
    client_logout_soon (client);
  g_object_unref (client);
}

/* conn: the link is gone. */
static void
lost_cb (gpointer user_data, MynaClientError code, const char *reason)
{
  Attempt *a = user_data;
  MynaClient *client = a->client;

  if (client == NULL)
    return;
  g_object_ref (client);
  if (client->logging_out)
    {
      client_attempt_drop (client, FALSE);
      client_logout_soon (client);
    }
  else
    client_chain_failed (client, reason != NULL ? reason : "connection closed");
  g_object_unref (client);
}

/* ---- public: running --------------------------------------------------------------------- */

void
myna_client_start (MynaClient *client)
{
  g_return_if_fail (MYNA_IS_CLIENT (client));

  if (client->running)
    return;
  if (client->logging_out)
    client_logout_finish (client);
  client->running = TRUE;
  client->failures = 0;
  client->notauth_in_row = 0;
  if (!client->network_available)
    {
      client_set_state (client, MYNA_CLIENT_STATE_DISCONNECTED, "network unavailable");
      return;
    }
  attempt_start (client);
}

/* The end of a logout: the stream closed, SM state gone, STOPPED. */
static void
client_logout_finish (MynaClient *client)
{
  if (client->logout_id != 0)
    {
      myna_client_clock_remove (client->clock, client->logout_id);
      client->logout_id = 0;
    }
  if (client->logout_idle != NULL)
    {
      g_source_destroy (client->logout_idle);
      g_clear_pointer (&client->logout_idle, g_source_unref);
    }
  client->logging_out = FALSE;
  client_fail_iqs (client, MYNA_CLIENT_ERROR_STOPPED, "logged out");
  client_attempt_drop (client, client_online (client));
  myna_conn_sm_clear (&client->sm);
  if (!client->running)
    client_set_state (client, MYNA_CLIENT_STATE_STOPPED, NULL);
}

/* The ack wait is over. */
static gboolean
client_logout_timeout (gpointer data)
{
  MynaClient *client = data;

  client->logout_id = 0;
  g_debug ("logout: %u stanzas unacknowledged", g_queue_get_length (&client->sm.unacked));
  g_object_ref (client);
  client_logout_finish (client);
  g_object_unref (client);
  return G_SOURCE_REMOVE;
}

void
myna_client_logout (MynaClient *client)
{
  g_return_if_fail (MYNA_IS_CLIENT (client));

  client->running = FALSE;
  client_cancel_reconnect (client);
  if (client->logging_out)
    return;
  if (!client_online (client))
    {
      client_logout_finish (client);
      return;
    }
  g_message ("logging out");
  client->logging_out = TRUE;
  g_autoptr(MynaStanza) unavailable = myna_stanza_build ("<presence type='unavailable'/>");
  myna_conn_send (client->attempt->conn, unavailable);
  if (g_queue_is_empty (&client->sm.unacked))
    client_logout_finish (client);
  else
    client->logout_id = myna_client_clock_add_timeout (client->clock, LOGOUT_WAIT_MS,
                                                       client_logout_timeout, client, NULL);
}

void
myna_client_set_network_available (MynaClient *client, gboolean available)
{
  g_return_if_fail (MYNA_IS_CLIENT (client));

  available = !!available;
  g_debug ("network %s", available ? "available" : "unavailable");
  client->network_available = available;
  if (!client->running)
    return;
  if (!available)
    {
      client_cancel_reconnect (client);
      if (client->state == MYNA_CLIENT_STATE_RECONNECTING)
        client_set_state (client, MYNA_CLIENT_STATE_DISCONNECTED, "network unavailable");
      return;
    }
  if (client->attempt == NULL && !client->logging_out)
    attempt_start (client);
}

/* ---- public: messages and presence ----------------------------------------------------------- */

/* Whether every character of @text (UTF-8) may appear in XML 1.0. */
static gboolean
xml_text_ok (const char *text)
{
  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      if (!(c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF)
            || (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF)))
        return FALSE;
    }
  return TRUE;
}

char *
myna_client_send_message (MynaClient *client, const char *to, const char *body, GError **error)
{
  g_return_val_if_fail (MYNA_IS_CLIENT (client), NULL);
  g_return_val_if_fail (to != NULL, NULL);
  g_return_val_if_fail (body != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  g_autoptr(MynaJid) jid = myna_jid_parse (to, error);
  if (jid == NULL)
    return NULL;
  if (!g_utf8_validate (body, -1, NULL))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "the body is not UTF-8");
      return NULL;
    }
  if (!xml_text_ok (body))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "the body holds characters XML cannot carry");
      return NULL;
    }
  g_autofree char *id = g_uuid_string_random ();
  g_autoptr(MynaStanza) check = client_build_message (client, id, myna_jid_to_string (jid), body);
  if (check == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "the body holds characters XML cannot carry");
      return NULL;
    }
  MynaClientMessage m = {
    .id = id,
    .direction = MYNA_CLIENT_DIRECTION_OUT,
    .peer = (char *) myna_jid_to_string (jid),
    .body = (char *) body,
    .type = (char *) "chat",
    .state = MYNA_CLIENT_MESSAGE_QUEUED,
    .timestamp = g_get_real_time (),
  };
  if (!myna_client_store_add_outgoing (client->store, &m, error))
    return NULL;
  if (client_online (client) && !client->logging_out)
    client_send_stored (client, &m);
  return g_steal_pointer (&id);
}

void
myna_client_send_presence (MynaClient *client, const char *show, const char *status,
                           gint priority)
{
  g_return_if_fail (MYNA_IS_CLIENT (client));

  if (show != NULL && g_strcmp0 (show, "away") != 0 && g_strcmp0 (show, "chat") != 0
      && g_strcmp0 (show, "dnd") != 0 && g_strcmp0 (show, "xa") != 0)
    {
      g_warning ("presence show '%s' is not away, chat, dnd or xa: ignored", show);
      show = NULL;
    }
  if (status != NULL && !g_utf8_validate (status, -1, NULL))
    {
      g_warning ("presence status is not UTF-8: ignored");
      status = NULL;
    }
  g_free (client->show);
  client->show = g_strdup (show);
  g_free (client->status);
  client->status = g_strdup (status);
  client->priority = CLAMP (priority, -128, 127);
  if (client_online (client) && !client->logging_out)
    {
      g_autoptr(MynaStanza) p = client_build_presence (client);
      myna_conn_send (client->attempt->conn, p);
    }
}

void
myna_client_subscription (MynaClient *client, const char *jid, const char *type)
{
  g_return_if_fail (MYNA_IS_CLIENT (client));
  g_return_if_fail (jid != NULL && type != NULL);

  if (g_strcmp0 (type, "subscribe") != 0 && g_strcmp0 (type, "subscribed") != 0
      && g_strcmp0 (type, "unsubscribe") != 0 && g_strcmp0 (type, "unsubscribed") != 0)
    {
      g_warning ("subscription type '%s' unknown: nothing sent", type);
      return;
    }
  g_autoptr(GError) error = NULL;
  g_autoptr(MynaJid) to = myna_jid_parse (jid, &error);
  if (to == NULL)
    {
      g_warning ("subscription to '%s': %s", jid, error->message);
      return;
    }
  if (!client_online (client))
    {
      g_message ("subscription %s to %s not sent: offline", type, jid);
      return;
    }
  g_autoptr(MynaJid) bare = myna_jid_get_bare (to);
  g_autoptr(MynaStanza) p = myna_stanza_build ("<presence to='%s' type='%s'/>",
                                               myna_jid_to_string (bare), type);
  myna_conn_send (client->attempt->conn, p);
}

/* ---- public: IQs ------------------------------------------------------------------------------ */

/* conn: the answer to an app IQ. */
static void
iq_call_answer (gpointer user_data, MynaStanza *result, const GError *error)
{
  IqCall *call = user_data;

  if (!call->done)
    {
      if (error != NULL)
        iq_call_complete (call, NULL, g_error_copy (error));
      else
        {
          g_autofree char *xml = myna_stanza_to_string (result);
          iq_call_complete (call, xml, NULL);
        }
    }
  iq_call_unref (call);
}

/* The idle that completes a cancelled IqCall. */
static gboolean
iq_call_cancelled_idle (gpointer data)
{
  IqCall *call = data;

  iq_call_complete (call, NULL, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                     "Operation was cancelled"));
  return G_SOURCE_REMOVE;
}

/* The cancellable fired (maybe on another thread): complete from an idle,
 * where the handler can be disconnected. */
static void
iq_call_cancelled (GCancellable *cancellable, gpointer data)
{
  IqCall *call = data;
  MynaClient *client = call->client;
  GSource *idle = g_idle_source_new ();

  g_source_set_static_name (idle, "myna-client iq cancel");
  g_source_set_callback (idle, iq_call_cancelled_idle, iq_call_ref (call), iq_call_unref);
  g_source_attach (idle, client != NULL ? client->context : g_main_context_get_thread_default ());
  g_source_unref (idle);
}

/* Sends @iq for @task (which returns the result XML, or TRUE). */
static void
client_iq_start (MynaClient *client, MynaStanza *iq, guint timeout_ms, GTask *task,
                 gboolean want_xml)
{
  if (!client_online (client) || client->logging_out)
    {
      g_task_return_new_error (task, MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_NOT_CONNECTED,
                               "not connected");
      return;
    }
  IqCall *call = g_new0 (IqCall, 1);
  GCancellable *cancellable = g_task_get_cancellable (task);

  call->ref = 1;                          /* the conn's callback */
  call->client = client;
  call->task = g_object_ref (task);
  call->want_xml = want_xml;
  client->iq_calls = g_list_prepend (client->iq_calls, call);
  if (cancellable != NULL)
    {
      call->cancellable = g_object_ref (cancellable);
      call->cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (iq_call_cancelled),
                                               iq_call_ref (call), iq_call_unref);
    }
  myna_conn_iq (client->attempt->conn, iq, timeout_ms != 0 ? timeout_ms : client->iq_timeout,
                       iq_call_answer, call);
}

void
myna_client_send_iq (MynaClient *client, const char *iq_xml, guint timeout_ms,
                     GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (MYNA_IS_CLIENT (client));
  g_return_if_fail (iq_xml != NULL);

  g_autoptr(GTask) task = g_task_new (client, cancellable, callback, user_data);
  g_autoptr(GError) error = NULL;

  g_task_set_source_tag (task, myna_client_send_iq);
  g_autoptr(MynaStanza) iq = myna_stanza_parse (iq_xml, -1, &error);
  if (iq == NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                               "not an XML element: %s", error->message);
      return;
    }
  const char *type = myna_stanza_get_type (iq);
  if (g_strcmp0 (myna_stanza_get_name (iq), "iq") != 0
      || (g_strcmp0 (type, "get") != 0 && g_strcmp0 (type, "set") != 0))
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                               "not an <iq/> of type get or set");
      return;
    }
  client_iq_start (client, iq, timeout_ms, task, TRUE);
}

char *
myna_client_send_iq_finish (MynaClient *client, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, client), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* Starts a boolean IQ operation tagged @tag. */
static void
client_iq_bool (MynaClient *client, MynaStanza *iq, gpointer tag, GCancellable *cancellable,
                GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (client, cancellable, callback, user_data);

  g_task_set_source_tag (task, tag);
  if (iq == NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                               "an argument cannot be carried in XML");
      return;
    }
  client_iq_start (client, iq, 0, task, FALSE);
}

/* Finishes a boolean IQ operation tagged @tag. */
static gboolean
client_iq_bool_finish (MynaClient *client, GAsyncResult *result, gpointer tag, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, client), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == tag, FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

void
myna_client_roster_set (MynaClient *client, const char *jid, const char *name,
                        const char * const *groups, GCancellable *cancellable,
                        GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (MYNA_IS_CLIENT (client));
  g_return_if_fail (jid != NULL);

  g_autoptr(MynaStanza) iq = myna_stanza_build ("<iq type='set'><query xmlns='"
                                                MYNA_CLIENT_NS_ROSTER "'><item jid='%s'/>"
                                                "</query></iq>", jid);
  if (iq != NULL)
    {
      MynaStanza *item = myna_stanza_get_child (myna_stanza_get_child (iq, "query", NULL),
                                                "item", NULL);
      if (name != NULL)
        myna_stanza_set_attr (item, "name", name);
      for (guint i = 0; groups != NULL && groups[i] != NULL; i++)
        myna_stanza_add_text_child (item, "group", groups[i]);
    }
  client_iq_bool (client, iq, myna_client_roster_set, cancellable, callback, user_data);
}

gboolean
myna_client_roster_set_finish (MynaClient *client, GAsyncResult *result, GError **error)
{
  return client_iq_bool_finish (client, result, myna_client_roster_set, error);
}

void
myna_client_roster_remove (MynaClient *client, const char *jid, GCancellable *cancellable,
                           GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (MYNA_IS_CLIENT (client));
  g_return_if_fail (jid != NULL);

  g_autoptr(MynaStanza) iq = myna_stanza_build ("<iq type='set'><query xmlns='"
                                                MYNA_CLIENT_NS_ROSTER "'><item jid='%s' "
                                                "subscription='remove'/></query></iq>", jid);
  client_iq_bool (client, iq, myna_client_roster_remove, cancellable, callback, user_data);
}

gboolean
myna_client_roster_remove_finish (MynaClient *client, GAsyncResult *result, GError **error)
{
  return client_iq_bool_finish (client, result, myna_client_roster_remove, error);
}

void
myna_client_push_enable (MynaClient *client, const char *jid, const char *node,
                         const char *secret, GCancellable *cancellable,
                         GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (MYNA_IS_CLIENT (client));
  g_return_if_fail (jid != NULL && node != NULL);

  g_autoptr(MynaStanza) iq = myna_stanza_build ("<iq type='set'><enable xmlns='"
                                                MYNA_CLIENT_NS_PUSH "' jid='%s' node='%s'/>"
                                                "</iq>", jid, node);
  if (iq != NULL && secret != NULL)
    {
      MynaStanza *enable = myna_stanza_get_child (iq, "enable", MYNA_CLIENT_NS_PUSH);
      g_autoptr(MynaStanza) form = myna_stanza_build (
          "<x xmlns='jabber:x:data' type='submit'>"
          "<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value>"
          "</field><field var='secret'><value>%s</value></field></x>", secret);
      if (form != NULL)
        myna_stanza_append (enable, form);
      else
        g_clear_pointer (&iq, myna_stanza_unref);
    }
  client_iq_bool (client, iq, myna_client_push_enable, cancellable, callback, user_data);
}

gboolean
myna_client_push_enable_finish (MynaClient *client, GAsyncResult *result, GError **error)
{
  return client_iq_bool_finish (client, result, myna_client_push_enable, error);
}

void
myna_client_push_disable (MynaClient *client, const char *jid, const char *node,
                          GCancellable *cancellable, GAsyncReadyCallback callback,
                          gpointer user_data)
{
  g_return_if_fail (MYNA_IS_CLIENT (client));
  g_return_if_fail (jid != NULL);

  g_autoptr(MynaStanza) iq = myna_stanza_build ("<iq type='set'><disable xmlns='"
                                                MYNA_CLIENT_NS_PUSH "' jid='%s'/></iq>", jid);
  if (iq != NULL && node != NULL)
    myna_stanza_set_attr (myna_stanza_get_child (iq, "disable", MYNA_CLIENT_NS_PUSH), "node", node);
  client_iq_bool (client, iq, myna_client_push_disable, cancellable, callback, user_data);
}

gboolean
myna_client_push_disable_finish (MynaClient *client, GAsyncResult *result, GError **error)
{
  return client_iq_bool_finish (client, result, myna_client_push_disable, error);
}

/* ---- GObject ------------------------------------------------------------------------------------ */

MynaClient *
myna_client_new (MynaClientStore *store)
{
  return myna_client_new_with_clock (store, NULL);
}

MynaClient *
myna_client_new_with_clock (MynaClientStore *store, MynaClientClock *clock)
{
  g_return_val_if_fail (MYNA_IS_CLIENT_STORE (store), NULL);
  g_return_val_if_fail (clock == NULL || MYNA_IS_CLIENT_CLOCK (clock), NULL);
  return g_object_new (MYNA_TYPE_CLIENT, "store", store, "clock", clock, NULL);
}

MynaClientStore *
myna_client_get_store (MynaClient *client)
{
  g_return_val_if_fail (MYNA_IS_CLIENT (client), NULL);
  return client->store;
}

MynaClientState
myna_client_get_state (MynaClient *client)
{
  g_return_val_if_fail (MYNA_IS_CLIENT (client), MYNA_CLIENT_STATE_STOPPED);
  return client->state;
}

const char *
myna_client_get_bound_jid (MynaClient *client)
{
  g_return_val_if_fail (MYNA_IS_CLIENT (client), NULL);
  return client->bound_jid;
}

/* Replaces a string field from a GValue. */
static void
set_string (char **field, const GValue *value)
{
  g_free (*field);
  *field = g_value_dup_string (value);
}

static void
client_set_property (GObject *object, guint id, const GValue *value, GParamSpec *pspec)
{
  MynaClient *client = MYNA_CLIENT (object);

  switch (id)
    {
    case PROP_STORE:              client->store = g_value_dup_object (value); break;
    case PROP_CLOCK:              client->clock = g_value_dup_object (value); break;
    case PROP_JID:                set_string (&client->jid, value); break;
    case PROP_PASSWORD:           set_string (&client->password, value); break;
    case PROP_RESOURCE:           set_string (&client->resource, value); break;
    case PROP_SERVER:             set_string (&client->server, value); break;
    case PROP_PORT:               client->port = g_value_get_uint (value); break;
    case PROP_TLS:                client->tls = g_value_get_enum (value); break;
    case PROP_CA_FILE:            set_string (&client->ca_file, value); break;
    case PROP_ACCEPT_CERTIFICATE: set_string (&client->accept_certificate, value); break;
    case PROP_AUTO_REGISTER:      client->auto_register = g_value_get_boolean (value); break;
    case PROP_HEARTBEAT_INTERVAL: client->heartbeat_interval = g_value_get_uint (value); break;
    case PROP_HEARTBEAT_TIMEOUT:  client->heartbeat_timeout = g_value_get_uint (value); break;
    case PROP_RECONNECT_BASE:     client->reconnect_base = g_value_get_uint (value); break;
    case PROP_RECONNECT_MAX:      client->reconnect_max = g_value_get_uint (value); break;
    case PROP_IQ_TIMEOUT:         client->iq_timeout = g_value_get_uint (value); break;
    case PROP_RECEIPTS:           client->receipts = g_value_get_boolean (value); break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
    }
}

static void
client_get_property (GObject *object, guint id, GValue *value, GParamSpec *pspec)
{
  MynaClient *client = MYNA_CLIENT (object);

  switch (id)
    {
    case PROP_STORE:              g_value_set_object (value, client->store); break;
    case PROP_CLOCK:              g_value_set_object (value, client->clock); break;
    case PROP_JID:                g_value_set_string (value, client->jid); break;
    case PROP_PASSWORD:           g_value_set_string (value, client->password); break;
    case PROP_RESOURCE:           g_value_set_string (value, client->resource); break;
    case PROP_SERVER:             g_value_set_string (value, client->server); break;
    case PROP_PORT:               g_value_set_uint (value, client->port); break;
    case PROP_TLS:                g_value_set_enum (value, client->tls); break;
    case PROP_CA_FILE:            g_value_set_string (value, client->ca_file); break;
    case PROP_ACCEPT_CERTIFICATE: g_value_set_string (value, client->accept_certificate); break;
    case PROP_AUTO_REGISTER:      g_value_set_boolean (value, client->auto_register); break;
    case PROP_HEARTBEAT_INTERVAL: g_value_set_uint (value, client->heartbeat_interval); break;
    case PROP_HEARTBEAT_TIMEOUT:  g_value_set_uint (value, client->heartbeat_timeout); break;
    case PROP_RECONNECT_BASE:     g_value_set_uint (value, client->reconnect_base); break;
    case PROP_RECONNECT_MAX:      g_value_set_uint (value, client->reconnect_max); break;
    case PROP_IQ_TIMEOUT:         g_value_set_uint (value, client->iq_timeout); break;
    case PROP_RECEIPTS:           g_value_set_boolean (value, client->receipts); break;
    case PROP_STATE:              g_value_set_enum (value, client->state); break;
    case PROP_BOUND_JID:          g_value_set_string (value, client->bound_jid); break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
    }
}

static void
client_constructed (GObject *object)
{
  MynaClient *client = MYNA_CLIENT (object);

  G_OBJECT_CLASS (myna_client_parent_class)->constructed (object);
  if (client->store == NULL)
    g_critical ("MynaClient needs a store");
  if (client->clock == NULL)
    client->clock = myna_client_clock_new_real ();
}

static void
client_dispose (GObject *object)
{
  MynaClient *client = MYNA_CLIENT (object);

  client->running = FALSE;
  client_cancel_reconnect (client);
  if (client->logout_id != 0)
    {
      myna_client_clock_remove (client->clock, client->logout_id);
      client->logout_id = 0;
    }
  if (client->logout_idle != NULL)
    {
      g_source_destroy (client->logout_idle);
      g_clear_pointer (&client->logout_idle, g_source_unref);
    }
  client->logging_out = FALSE;
  client_fail_iqs (client, MYNA_CLIENT_ERROR_STOPPED, "the client is gone");
  client_attempt_drop (client, FALSE);
  if (client->reap_source != NULL)
    {
      g_source_destroy (client->reap_source);
      g_clear_pointer (&client->reap_source, g_source_unref);
    }
  client_reap (client);
  /* Politely closing conns go now: their timeouts hold the attempt, which
   * holds the conn, which holds the clock (a cycle when nobody else runs
   * the clock: a test clock). */
  while (client->closing->len > 0)
    {
      Attempt *a = g_ptr_array_steal_index (client->closing, client->closing->len - 1);
      guint id = a->close_id;

      a->closer = NULL;
      a->close_id = 0;
      g_clear_pointer (&a->conn, myna_conn_free);
      myna_client_clock_remove (client->clock, id);   /* its destroy unrefs @a */
    }
  myna_conn_sm_clear (&client->sm);
  g_clear_object (&client->store);
  g_clear_object (&client->clock);
  G_OBJECT_CLASS (myna_client_parent_class)->dispose (object);
}

static void
client_finalize (GObject *object)
{
  MynaClient *client = MYNA_CLIENT (object);

  g_ptr_array_unref (client->dead);
  g_ptr_array_unref (client->closing);
  g_rand_free (client->rand);
  g_main_context_unref (client->context);
  g_free (client->jid);
  g_free (client->password);
  g_free (client->resource);
  g_free (client->server);
  g_free (client->ca_file);
  g_free (client->accept_certificate);
  g_free (client->show);
  g_free (client->status);
  g_free (client->bound_jid);
  G_OBJECT_CLASS (myna_client_parent_class)->finalize (object);
}

/* A string property. */
static GParamSpec *
string_prop (const char *name, const char *blurb)
{
  return g_param_spec_string (name, NULL, blurb, NULL,
                              G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
}

/* A uint property. */
static GParamSpec *
uint_prop (const char *name, const char *blurb, guint max, guint def)
{
  return g_param_spec_uint (name, NULL, blurb, 0, max, def,
                            G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_STATIC_STRINGS
                            | G_PARAM_EXPLICIT_NOTIFY);
}

static void
myna_client_class_init (MynaClientClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->set_property = client_set_property;
  object_class->get_property = client_get_property;
  object_class->constructed = client_constructed;
  object_class->dispose = client_dispose;
  object_class->finalize = client_finalize;

  /**
   * MynaClient:store:
   *
   * Where the account, roster and messages are kept (construct-only).
   */
  props[PROP_STORE] = g_param_spec_object ("store", NULL, NULL, MYNA_TYPE_CLIENT_STORE,
                                           G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY
                                           | G_PARAM_STATIC_STRINGS);
  /**
   * MynaClient:clock:
   *
   * The time source (construct-only); %NULL: real time.
   */
  props[PROP_CLOCK] = g_param_spec_object ("clock", NULL, NULL, MYNA_TYPE_CLIENT_CLOCK,
                                           G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY
                                           | G_PARAM_STATIC_STRINGS);
  /**
   * MynaClient:jid:
   *
   * The account to use or register when the store holds none (a bare
   * JID, or a domain: register a generated username).
   */
  props[PROP_JID] = string_prop ("jid", "The account's JID");
  /**
   * MynaClient:password:
   *
   * The password with #MynaClient:jid (%NULL: generated at registration).
   */
  props[PROP_PASSWORD] = string_prop ("password", "The account's password");
  /**
   * MynaClient:resource:
   *
   * The resource to bind (%NULL: the server assigns one).
   */
  props[PROP_RESOURCE] = string_prop ("resource", "The resource to bind");
  /**
   * MynaClient:server:
   *
   * The host to connect to (%NULL: the JID's domain).
   */
  props[PROP_SERVER] = string_prop ("server", "The host to connect to");
  /**
   * MynaClient:port:
   *
   * The port (0: 5222, or 5223 with direct TLS).
   */
  props[PROP_PORT] = uint_prop ("port", "The port", 65535, 0);
  /**
   * MynaClient:tls:
   *
   * A #MynaClientTls: STARTTLS (default), DIRECT or NONE.
   */
  props[PROP_TLS] = g_param_spec_enum ("tls", NULL, "How TLS is used", MYNA_TYPE_CLIENT_TLS,
                                       MYNA_CLIENT_TLS_STARTTLS,
                                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT
                                       | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * MynaClient:ca-file:
   *
   * PEM trust anchors (%NULL: the system's).
   */
  props[PROP_CA_FILE] = string_prop ("ca-file", "PEM trust anchors");
  /**
   * MynaClient:accept-certificate:
   *
   * A PEM certificate accepted whatever its checks say.
   */
  props[PROP_ACCEPT_CERTIFICATE] = string_prop ("accept-certificate",
                                                "A PEM certificate accepted as is");
  /**
   * MynaClient:auto-register:
   *
   * Register when no account is stored and after not-authorized.
   */
  props[PROP_AUTO_REGISTER] = g_param_spec_boolean ("auto-register", NULL,
                                                    "Register when no account is stored", TRUE,
                                                    G_PARAM_READWRITE | G_PARAM_CONSTRUCT
                                                    | G_PARAM_STATIC_STRINGS
                                                    | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * MynaClient:heartbeat-interval:
   *
   * Seconds between heartbeats on a quiet link (0: none).
   */
  props[PROP_HEARTBEAT_INTERVAL] = uint_prop ("heartbeat-interval", "Seconds between heartbeats",
                                              G_MAXUINT, 60);
  /**
   * MynaClient:heartbeat-timeout:
   *
   * Seconds a heartbeat may go unanswered.
   */
  props[PROP_HEARTBEAT_TIMEOUT] = uint_prop ("heartbeat-timeout", "Seconds a heartbeat may wait",
                                             G_MAXUINT, 20);
  /**
   * MynaClient:reconnect-base:
   *
   * Milliseconds of the first wait before reconnecting.
   */
  props[PROP_RECONNECT_BASE] = uint_prop ("reconnect-base", "The first wait (ms)", G_MAXUINT, 2000);
  /**
   * MynaClient:reconnect-max:
   *
   * Milliseconds of the longest wait before reconnecting.
   */
  props[PROP_RECONNECT_MAX] = uint_prop ("reconnect-max", "The longest wait (ms)", G_MAXUINT,
                                         600000);
  /**
   * MynaClient:iq-timeout:
   *
   * Milliseconds for the library's own IQs (and each step of the chain).
   */
  props[PROP_IQ_TIMEOUT] = uint_prop ("iq-timeout", "IQ timeout (ms)", G_MAXUINT, 30000);
  /**
   * MynaClient:receipts:
   *
   * Ask for XEP-0184 receipts and answer them.
   */
  props[PROP_RECEIPTS] = g_param_spec_boolean ("receipts", NULL, "Use XEP-0184 receipts", TRUE,
                                               G_PARAM_READWRITE | G_PARAM_CONSTRUCT
                                               | G_PARAM_STATIC_STRINGS
                                               | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * MynaClient:state:
   *
   * The #MynaClientState (read-only).
   */
  props[PROP_STATE] = g_param_spec_enum ("state", NULL, "The connection's state",
                                         MYNA_TYPE_CLIENT_STATE, MYNA_CLIENT_STATE_STOPPED,
                                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS
                                         | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * MynaClient:bound-jid:
   *
   * The full JID while online (read-only).
   */
  props[PROP_BOUND_JID] = g_param_spec_string ("bound-jid", NULL, "The full JID while online",
                                               NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS
                                               | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, props);

  /**
   * MynaClient::state-changed:
   * @client: the client
   * @state: the new state
   * @reason: (nullable): why (DISCONNECTED, STOPPED), a short text
   */
  signals[SIG_STATE_CHANGED] =
      g_signal_new ("state-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                    NULL, G_TYPE_NONE, 2, MYNA_TYPE_CLIENT_STATE, G_TYPE_STRING);
  /**
   * MynaClient::reconnecting:
   * @client: the client
   * @delay_ms: the next attempt comes in this many milliseconds
   */
  signals[SIG_RECONNECTING] =
      g_signal_new ("reconnecting", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                    NULL, G_TYPE_NONE, 1, G_TYPE_UINT);
  /**
   * MynaClient::message-received:
   * @client: the client
   * @message: the message, stored and new (never twice for one message)
   */
  signals[SIG_MESSAGE_RECEIVED] =
      g_signal_new ("message-received", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                    NULL, NULL, G_TYPE_NONE, 1, MYNA_TYPE_CLIENT_MESSAGE);
  /**
   * MynaClient::message-state-changed:
   * @client: the client
   * @id: the outgoing message's id
   * @state: its new state
   */
  signals[SIG_MESSAGE_STATE_CHANGED] =
      g_signal_new ("message-state-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                    NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING,
                    MYNA_TYPE_CLIENT_MESSAGE_STATE);
  /**
   * MynaClient::notification:
   * @client: the client
   * @notification: the notification, stored and new
   */
  signals[SIG_NOTIFICATION] =
      g_signal_new ("notification", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                    NULL, G_TYPE_NONE, 1, MYNA_TYPE_CLIENT_NOTIFICATION);
  /**
   * MynaClient::credentials-cleared:
   * @client: the client
   * @reason: why ("not-authorized")
   */
  signals[SIG_CREDENTIALS_CLEARED] =
      g_signal_new ("credentials-cleared", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                    NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
  /**
   * MynaClient::registered:
   * @client: the client
   * @jid: the bare JID of the account registered (and stored)
   */
  signals[SIG_REGISTERED] =
      g_signal_new ("registered", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                    NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
  /**
   * MynaClient::roster-changed:
   * @client: the client
   */
  signals[SIG_ROSTER_CHANGED] =
      g_signal_new ("roster-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                    NULL, G_TYPE_NONE, 0);
  /**
   * MynaClient::presence:
   * @client: the client
   * @from: (nullable): who sent it
   * @type: (nullable): %NULL for available, else the presence type
   * @show: (nullable): the show value
   * @status: (nullable): the status text
   */
  signals[SIG_PRESENCE] =
      g_signal_new ("presence", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                    NULL, G_TYPE_NONE, 4, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING,
                    G_TYPE_STRING);
}

static void
myna_client_init (MynaClient *client)
{
  client->context = g_main_context_ref_thread_default ();
  client->rand = g_rand_new ();
  client->dead = g_ptr_array_new ();
  client->closing = g_ptr_array_new ();
  client->network_available = TRUE;
  client->auto_register = TRUE;
  client->receipts = TRUE;
  client->heartbeat_interval = 60;
  client->heartbeat_timeout = 20;
  client->reconnect_base = 2000;
  client->reconnect_max = 600000;
  client->iq_timeout = 30000;
  client->state = MYNA_CLIENT_STATE_STOPPED;
}
