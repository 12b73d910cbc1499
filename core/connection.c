/* connection.c: one client connection — socket I/O with bounded buffers,
 * the XML stream, stream negotiation and errors, and the session state
 * that modules see through MynaSession.
 *
 * A session is never freed while its own code is on the stack: closing
 * marks it, sends the stream error, and queues it for the reaper, which
 * runs from one idle source for all sessions. */
#include "private.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define READ_CHUNK 16384
/* The limits of the listener the session came in on. */
#define LIMITS(s) (myna_listener_get_limits ((s)->listener, (s)->server))
#define NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"

typedef enum {
  STATE_HEADER,      /* waiting for the client's stream header */
  STATE_OPEN,        /* stream open, not authenticated */
  STATE_AUTHED,      /* authenticated, not bound */
  STATE_BOUND,       /* resource bound: a full session */
  STATE_CLOSING,     /* stream error or close sent; being reaped */
} SessionState;

struct _MynaSession {
  MynaServer    *server;
  MynaListener  *listener;
  int            fd;
  MynaPollWatch *watch;
  char          *peer;
  char          *ip;
  MynaXmlStream *xml;
  GString       *out;          /* pending output from out_off */
  gsize          out_off;
  MynaTimer     *timer;        /* authentication timeout */
  MynaHost      *host;
  char          *stream_id;
  MynaJid       *jid;
  SessionState   state;
  int            priority;
  gboolean       available;
  gboolean       secure;
  gnutls_session_t tls;
  gboolean       handshaking;
  gboolean       starttls_pending; /* <proceed/> queued: TLS starts once it is out */
  gboolean       header_sent;
  gint64         last_read;    /* monotonic µs of the last bytes in */
  GList          read_link;    /* in server->read_order while linked */
  gboolean       read_linked;
  gboolean       eof;          /* the peer closed its side */
  double         tokens;       /* byte-rate bucket (bytes) */
  gint64         tokens_at;    /* when the bucket was last refilled */
  MynaTimer     *rate_timer;   /* resumes reading after a rate pause */
  gboolean       rate_paused;
  gboolean       storage_paused; /* reading stopped by the storage backlog */
  gboolean       rate_logged;
  gboolean       flush_queued; /* in server->flush_queue */
  gboolean       blocked;      /* the socket took less than offered: wait for EPOLLOUT */
  MynaTimer     *drain_timer;  /* the queue must be back under max_output by then */
  gsize          out_counted;  /* pending bytes counted in server->output_total */
  guint          over_soft_pos; /* index + 1 in server->output_over_soft; 0: not in it */
  GArray        *waiters;      /* DrainWaiter, NULL until the first */
  guint64        waiter_serial;
  gboolean       notifying;    /* session_notify_drained is on the stack */
  gboolean       drain_scheduled; /* in drain_queue */
  gboolean       reaping;
  gboolean       cut;          /* cut by the budget, its close due from idle (cut_queue) */
  gboolean       hibernated;   /* bound, its transport gone, kept for resumption */
  gboolean       ip_counted;   /* counted in server->per_ip */
  gboolean       feeding;      /* its parser is running (session_read) */
  guint64        stanzas_in;   /* client stanzas received (stream management's h) */
  GArray        *data;         /* SessionDatum, NULL until the first */
};

/* One entry of myna_session_set_data, with the module that set it. */
typedef struct {
  GQuark         key;
  gpointer       data;
  GDestroyNotify destroy;
  MynaModule    *owner;
} SessionDatum;

static GPtrArray *reap_queue;
static guint reap_source;
/* Sessions the output budget cut, to close from idle: a cut happens inside
 * a write to another session, where running session/closed hooks would
 * pull state out from under whatever module code is writing. */
static GPtrArray *cut_queue;
static guint cut_source;

static const MynaXmlStreamCallbacks stream_callbacks;

/* Sessions are kept in server->read_order by the time of their last read,
 * so the idle sweep looks only at those silent long enough. */
static void
session_mark_read (MynaSession *s)
{
  GQueue *order = &s->server->read_order;

  s->last_read = g_get_monotonic_time ();
  if (s->read_linked)
    {
      if (order->tail == &s->read_link)
        return;
      g_queue_unlink (order, &s->read_link);
    }
  s->read_link.data = s;
  g_queue_push_tail_link (order, &s->read_link);
  s->read_linked = TRUE;
}

static void
session_unlink_read (MynaSession *s)
{
  if (!s->read_linked)
    return;
  g_queue_unlink (&s->server->read_order, &s->read_link);
  s->read_linked = FALSE;
}

/* ---- output -------------------------------------------------------------- */

/* A client is judged by whether it reads, not by how much others queue
 * for it at once:
 *  - queued bytes are written at once; only small writes made while the
 *    poller dispatches a batch wait for one write after it (FLUSH_EARLY
 *    bounds what waits so), and nothing is tried while the socket is
 *    known to be full (until EPOLLOUT);
 *  - above max_output (the soft limit) the client has output_drain_ms to
 *    read its queue back below it, else it is cut off (policy-violation);
 *    one stanza larger than max_output (a big roster) is delivered to a
 *    client that reads;
 *  - max_output_hard bounds one queue's memory whatever the client reads;
 *  - max_output_total bounds all queues together: server->output_total is
 *    kept exact (session_account after every change of a queue), and a
 *    write that would take it over the budget first cuts off clients over
 *    their soft limit, the one holding the most first (found in
 *    server->output_over_soft, the few sessions over max_output, and only
 *    when over budget: each such search cuts one).  A client under its soft
 *    limit is never cut for others' backlog: with none over, the write goes
 *    ahead, so the total stays under the larger of max_output_total and
 *    max_output per session;
 *  - modules pace bulk sends with myna_session_when_drained(). */

/* Queued bytes written at once even inside a batch. */
#define FLUSH_EARLY (64 * 1024)
/* A sent prefix this long is cut from the buffer while the rest waits. */
#define COMPACT_AT (64 * 1024)

static GPtrArray *drain_queue;   /* sessions whose waiters are checked from idle */
static GPtrArray *drain_running; /* the queue drain_run walks; a freed session is NULLed */
static guint drain_source;

static gsize
session_pending (MynaSession *s)
{
  return s->out->len - s->out_off;
}

static void session_flush (MynaSession *s);
static void session_close (MynaSession *s, const char *condition, const char *text,
                           gboolean log);
static void session_close_full (MynaSession *s, const char *condition, const char *text,
                                MynaStanza *app, gboolean log);
static gboolean session_transport_lost (MynaSession *s, const char *why);

/* ---- the output budget ---------------------------------------------------- */

/* Budget cuts are logged at most once per interval, with a count. */
#define BUDGET_LOG_INTERVAL_US (10 * G_USEC_PER_SEC)

static gboolean
session_over_soft (MynaSession *s)
{
  return session_pending (s) > LIMITS (s)->max_output;
}

static void
over_soft_remove (MynaSession *s)
{
  GPtrArray *set = s->server->output_over_soft;
  guint i = s->over_soft_pos - 1;

  g_ptr_array_remove_index_fast (set, i);
  if (i < set->len)
    ((MynaSession *) set->pdata[i])->over_soft_pos = i + 1;
  s->over_soft_pos = 0;
}

/* Brings the server's total and its set of sessions over the soft limit
 * up to date with @s's queue: called after every change of the queue. */
static void
session_account (MynaSession *s)
{
  MynaServer *server = s->server;
  gsize now = session_pending (s);
  gboolean over = now > LIMITS (s)->max_output;

  server->output_total = server->output_total - s->out_counted + now;
  s->out_counted = now;
  server->output_total_peak = MAX (server->output_total_peak, server->output_total);
  if (over && s->over_soft_pos == 0)
    {
      g_ptr_array_add (server->output_over_soft, s);
      s->over_soft_pos = server->output_over_soft->len;
    }
  else if (!over && s->over_soft_pos != 0)
    over_soft_remove (s);
}

void
myna_connections_log_budget (MynaServer *server)
{
  gint64 now = g_get_monotonic_time ();

  if (server->budget_cuts_unlogged == 0 || now < server->budget_log_at)
    return;
  g_warning ("%u client(s) over max_output cut off as not reading: output queued to all "
             "clients reached max_output_total (%" G_GSIZE_FORMAT " bytes); %" G_GUINT64_FORMAT
             " such cuts since start", server->budget_cuts_unlogged, server->max_output_total,
             server->counters.output_budget_cuts);
  server->budget_cuts_unlogged = 0;
  server->budget_log_at = now + BUDGET_LOG_INTERVAL_US;
}

/* The session over its soft limit that holds the most, or NULL.  One
 * whose limit was raised meanwhile (a reload) leaves the set here. */
static MynaSession *
budget_victim (MynaServer *server)
{
  GPtrArray *set = server->output_over_soft;
  MynaSession *best = NULL;

  for (guint i = 0; i < set->len;)
    {
      MynaSession *s = set->pdata[i];
      if (!session_over_soft (s))
        {
          over_soft_remove (s);
          continue;
        }
      if (best == NULL || session_pending (s) > session_pending (best))
        best = s;
      i++;
    }
  return best;
}

/* Closes the sessions the budget cut (see cut_queue). */
static gboolean
cut_run (gpointer unused)
{
  g_autoptr(GPtrArray) queue = g_steal_pointer (&cut_queue);

  cut_source = 0;
  for (guint i = 0; queue != NULL && i < queue->len; i++)
    {
      MynaSession *s = queue->pdata[i];
      if (s == NULL)
        continue;
      /* A session freed meanwhile left the queue (myna_connection_free). */
      g_ptr_array_index (queue, i) = NULL;
      s->cut = FALSE;
      if (!session_transport_lost (s, "not reading while the output budget is spent"))
        session_close (s, "policy-violation", "client is not reading", FALSE);
    }
  return G_SOURCE_REMOVE;
}

/* Cuts off @s, over its soft limit while the budget is spent; the log
 * gets one line per interval for all such cuts, not one per client. */
static void
budget_cut (MynaSession *s)
{
  MynaServer *server = s->server;

  g_debug ("%s: %" G_GSIZE_FORMAT " bytes queued while the output budget is spent: "
           "client is not reading, disconnecting", s->peer, session_pending (s));
  s->out_off = 0;
  g_string_truncate (s->out, 0);
  s->blocked = FALSE;
  session_account (s);
  server->counters.output_budget_cuts++;
  server->budget_cuts_unlogged++;
  myna_connections_log_budget (server);
  /* The close (its hooks) runs from idle, not inside the write that made
   * room; until then the session reads nothing and is sent nothing. */
  s->cut = TRUE;
  if (s->watch != NULL)
    myna_poller_modify (s->watch, 0);
  if (cut_queue == NULL)
    cut_queue = g_ptr_array_new ();
  g_ptr_array_add (cut_queue, s);
  if (cut_source == 0)
    {
      GSource *src = g_idle_source_new ();
      g_source_set_priority (src, G_PRIORITY_HIGH);
      g_source_set_callback (src, cut_run, NULL, NULL);
      g_source_set_name (src, "myna-budget-cut");
      cut_source = g_source_attach (src, server->context);
      g_source_unref (src);
    }
}

/* Makes room for @len more bytes to @s within max_output_total.  Closing
 * a client writes (its stream error, others' presence): those writes are
 * not held to the budget, so cuts do not nest. */
static void
budget_make_room (MynaSession *s, gsize len)
{
  MynaServer *server = s->server;

  if (server->output_cutting)
    return;
  server->output_cutting = TRUE;
  while (server->output_total + len > server->max_output_total && !s->reaping && !s->cut)
    {
      MynaSession *victim = budget_victim (server);
      if (victim == NULL)
        break;
      budget_cut (victim);
    }
  server->output_cutting = FALSE;
}

/* Watches for input unless closing or paused by the rate limit, and for
 * output while some is queued. */
static void
session_update_events (MynaSession *s)
{
  guint32 ev = 0;

  if (s->watch == NULL)
    return;
  if (s->cut)
    {
      myna_poller_modify (s->watch, 0);
      return;
    }
  if (s->state != STATE_CLOSING && !s->rate_paused && !s->storage_paused)
    ev |= EPOLLIN;
  if (s->out_off < s->out->len)
    ev |= EPOLLOUT;
  myna_poller_modify (s->watch, ev);
}

/* Cuts off a client whose queue broke a limit; @why goes to the log.
 * With @may_hibernate (not under a write: from a timer), a bound session
 * is offered to MYNA_EVENT_SESSION_TRANSPORT_LOST first. */
static void
session_overflow (MynaSession *s, const char *why, gboolean may_hibernate)
{
  g_warning ("%s: %s: client is not reading, disconnecting", s->peer, why);
  s->out_off = 0;
  g_string_truncate (s->out, 0);
  s->blocked = FALSE;
  session_account (s);
  s->server->counters.output_overflow++;
  if (may_hibernate && session_transport_lost (s, "not reading its output"))
    return;
  myna_session_close (s, "policy-violation", "client is not reading");
}

static void
session_drain_expired (gpointer data)
{
  MynaSession *s = data;
  const MynaLimits *l = LIMITS (s);

  if (s->state == STATE_CLOSING || session_pending (s) <= l->max_output)
    return;
  g_autofree char *why = g_strdup_printf ("%" G_GSIZE_FORMAT " bytes still queued after %u ms "
                                          "over max_output (%" G_GSIZE_FORMAT ")",
                                          session_pending (s), l->output_drain_ms, l->max_output);
  session_overflow (s, why, TRUE);
}

/* Arms the drain deadline when the queue is over the soft limit, stops it
 * once the queue is back under. */
static void
session_check_soft (MynaSession *s)
{
  const MynaLimits *l = LIMITS (s);

  if (session_pending (s) > l->max_output && s->state != STATE_CLOSING)
    {
      if (s->drain_timer == NULL)
        s->drain_timer = myna_timer_new_owned (session_drain_expired, s, NULL);
      if (!myna_timer_is_active (s->drain_timer))
        myna_timer_start (s->drain_timer, l->output_drain_ms);
    }
  else if (s->drain_timer != NULL)
    myna_timer_stop (s->drain_timer);
}

static void
session_write (MynaSession *s, const char *data, gsize len)
{
  if (s->fd < 0 || s->reaping || s->cut)
    return;
  if (session_pending (s) + len > LIMITS (s)->max_output_hard)
    {
      g_autofree char *why = g_strdup_printf ("output queue over %" G_GSIZE_FORMAT " bytes "
                                              "(max_output_hard)", LIMITS (s)->max_output_hard);
      session_overflow (s, why, FALSE);
      return;
    }
  if (s->server->output_total + len > s->server->max_output_total)
    {
      budget_make_room (s, len);
      if (s->reaping || s->cut)
        return;
    }
  g_string_append_len (s->out, data, (gssize) len);
  session_account (s);
  /* The socket is full: EPOLLOUT will say when to go on. */
  if (s->blocked)
    {
      session_check_soft (s);
      return;
    }
  /* While the poller dispatches a batch, small output is coalesced: every
   * stanza for this peer in the batch leaves in one write after it. */
  if (myna_poller_in_dispatch (s->server->poller) && session_pending (s) < FLUSH_EARLY)
    {
      if (!s->flush_queued)
        {
          s->flush_queued = TRUE;
          g_ptr_array_add (s->server->flush_queue, s);
        }
      return;
    }
  session_flush (s);
}

void
myna_connections_flush_queued (gpointer data)
{
  MynaServer *server = data;
  GPtrArray *q = server->flush_queue;

  /* Flushing may queue more (a close writes its error): index, not iterate. */
  for (guint i = 0; i < q->len; i++)
    {
      MynaSession *s = q->pdata[i];
      if (s == NULL)
        continue;
      s->flush_queued = FALSE;
      session_flush (s);
    }
  g_ptr_array_set_size (q, 0);
}

static void tls_start (MynaSession *s);

/* Writes what it can; FALSE when the peer is gone. */
static gssize
session_transport_write (MynaSession *s, const char *data, gsize len)
{
  if (s->tls != NULL && !s->handshaking)
    {
      ssize_t n = gnutls_record_send (s->tls, data, len);
      if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
        {
          errno = EAGAIN;
          return -1;
        }
      if (n < 0)
        {
          errno = EPIPE;
          return -1;
        }
      return n;
    }
  return send (s->fd, data, len, MSG_NOSIGNAL);
}

/* ---- drain waiters (myna_session_when_drained) ---------------------------- */

typedef struct {
  gsize                low_water;
  MynaSessionDrainFunc func;
  gpointer             data;
  GDestroyNotify       destroy;
  MynaModule          *owner;
  guint64              serial;
} DrainWaiter;

static void
drain_waiter_cancel (DrainWaiter *w)
{
  if (w->destroy == NULL)
    return;
  MynaModule *previous = myna_module_enter (w->owner);
  w->destroy (w->data);
  myna_module_leave (previous);
}

/* Drops every waiter of @s without calling it (the session closes). */
static void
session_cancel_waiters (MynaSession *s)
{
  GArray *waiters = g_steal_pointer (&s->waiters);

  for (guint i = 0; waiters != NULL && i < waiters->len; i++)
    drain_waiter_cancel (&g_array_index (waiters, DrainWaiter, i));
  if (waiters != NULL)
    g_array_unref (waiters);
}

static void drain_schedule (MynaSession *s);

/* Whether a waiter of @s has its level reached. */
static gboolean
session_waiter_due (MynaSession *s)
{
  for (guint i = 0; s->waiters != NULL && i < s->waiters->len; i++)
    if (session_pending (s) <= g_array_index (s->waiters, DrainWaiter, i).low_water)
      return TRUE;
  return FALSE;
}

/* After output went out: due waiters run from an idle source, never
 * under the write (a module's send) that drained the queue. */
static void
session_wake_waiters (MynaSession *s)
{
  if (s->state != STATE_CLOSING && session_waiter_due (s))
    drain_schedule (s);
}

/* Calls, once each, the waiters whose level the queue is down to.  Those
 * registered meanwhile wait for the next check, so a module that queues
 * nothing and asks again cannot loop here. */
static void
session_notify_drained (MynaSession *s)
{
  if (s->waiters == NULL || s->waiters->len == 0 || s->notifying
      || s->state == STATE_CLOSING)
    return;
  s->notifying = TRUE;
  guint64 last = s->waiter_serial;
  for (guint i = 0; s->waiters != NULL && i < s->waiters->len && s->state != STATE_CLOSING;)
    {
      DrainWaiter w = g_array_index (s->waiters, DrainWaiter, i);
      if (w.serial > last || session_pending (s) > w.low_water)
        {
          i++;
          continue;
        }
      g_array_remove_index (s->waiters, i);
      MynaModule *previous = myna_module_enter (w.owner);
      w.func (s, w.data);
      if (w.destroy != NULL)
        w.destroy (w.data);
      myna_module_leave (previous);
      i = 0;                    /* the callback may have changed the array */
    }
  s->notifying = FALSE;
  session_wake_waiters (s);
}

static gboolean
drain_run (gpointer unused)
{
  g_autoptr(GPtrArray) queue = g_steal_pointer (&drain_queue);
  GPtrArray *outer = drain_running;

  /* A callback may run a nested main loop, where the reaper frees a
   * session still further down this queue: myna_connection_free clears
   * its slot. */
  drain_source = 0;
  drain_running = queue;
  for (guint i = 0; queue != NULL && i < queue->len; i++)
    {
      MynaSession *s = queue->pdata[i];
      if (s == NULL)
        continue;
      s->drain_scheduled = FALSE;
      session_notify_drained (s);
    }
  drain_running = outer;
  return G_SOURCE_REMOVE;
}

/* Checks @s's waiters from an idle source: never under the caller. */
static void
drain_schedule (MynaSession *s)
{
  if (s->drain_scheduled)
    return;
  s->drain_scheduled = TRUE;
  if (drain_queue == NULL)
    drain_queue = g_ptr_array_new ();
  g_ptr_array_add (drain_queue, s);
  if (drain_source == 0)
    {
      GSource *src = g_idle_source_new ();
      g_source_set_callback (src, drain_run, NULL, NULL);
      g_source_set_name (src, "myna-drained");
      drain_source = g_source_attach (src, s->server->context);
      g_source_unref (src);
    }
}

gsize
myna_session_get_output_pending (MynaSession *session)
{
  g_return_val_if_fail (session != NULL, 0);
  return session_pending (session);
}

void
myna_session_when_drained (MynaSession *session, gsize low_water, MynaSessionDrainFunc func,
                           gpointer user_data, GDestroyNotify destroy)
{
  g_return_if_fail (session != NULL && func != NULL);

  DrainWaiter w = { low_water, func, user_data, destroy, myna_module_current (), 0 };

  if (session->state == STATE_CLOSING || session->reaping)
    {
      drain_waiter_cancel (&w);
      return;
    }
  w.serial = ++session->waiter_serial;
  if (session->waiters == NULL)
    session->waiters = g_array_sized_new (FALSE, FALSE, sizeof (DrainWaiter), 1);
  g_array_append_val (session->waiters, w);
  if (session_pending (session) <= low_water)
    drain_schedule (session);
}

/* ---- paced sends (myna_session_send_paced) ---------------------------------- */

/* One paced send, shared by the drain waiters it registers in turn: the
 * last reference runs the module's destroy notify. */
typedef struct {
  guint                batch;
  gsize                high_water;
  gsize                low_water;
  MynaSessionPacedFunc next;
  gpointer             data;
  GDestroyNotify       destroy;
} PacedSend;

static void
paced_clear (gpointer data)
{
  PacedSend *ps = data;

  if (ps->destroy != NULL)
    ps->destroy (ps->data);
}

static void
paced_unref (gpointer data)
{
  g_rc_box_release_full (data, paced_clear);
}

static void paced_drained (MynaSession *s, gpointer data);

/* Sends one batch: what @ps->next gives, while the session is open and
 * its queue under the high water.  Returns: whether more may come */
static gboolean
paced_batch (MynaSession *s, PacedSend *ps)
{
  for (guint sent = 0; ps->batch == 0 || sent < ps->batch; sent++)
    {
      g_autoptr(MynaStanza) stanza = NULL;

      if (!myna_session_is_open (s))
        return FALSE;
      if (ps->high_water > 0 && session_pending (s) >= ps->high_water)
        break;
      stanza = ps->next (s, ps->data);
      if (stanza == NULL)
        return FALSE;
      myna_session_send (s, stanza);
    }
  return myna_session_is_open (s);
}

/* Sends a batch, then waits for the queue to drain.  Returns: whether
 * it waits */
static gboolean
paced_send (MynaSession *s, PacedSend *ps)
{
  if (!paced_batch (s, ps) || s->state == STATE_CLOSING || s->reaping)
    return FALSE;
  myna_session_when_drained (s, ps->low_water, paced_drained, g_rc_box_acquire (ps),
                             paced_unref);
  return TRUE;
}

static void
paced_drained (MynaSession *s, gpointer data)
{
  paced_send (s, data);
}

gboolean
myna_session_send_paced (MynaSession *session, guint batch, gsize high_water, gsize low_water,
                         MynaSessionPacedFunc next, gpointer user_data, GDestroyNotify destroy)
{
  g_return_val_if_fail (session != NULL && next != NULL, FALSE);

  PacedSend *ps = g_rc_box_new0 (PacedSend);

  ps->batch = batch;
  ps->high_water = high_water;
  ps->low_water = low_water;
  ps->next = next;
  ps->data = user_data;
  ps->destroy = destroy;
  /* The waiter is the module's: it goes when the module unloads. */
  gboolean waits = paced_send (session, ps);
  paced_unref (ps);
  return waits;
}

guint
myna_connections_drop_waiters (MynaServer *server, MynaWaiterMatch match, gpointer user_data)
{
  g_return_val_if_fail (server != NULL && match != NULL, 0);

  g_autoptr(GList) sessions = g_hash_table_get_keys (server->connections);
  guint dropped = 0;

  for (GList *l = sessions; l != NULL; l = l->next)
    {
      MynaSession *s = l->data;
      for (guint i = 0; s->waiters != NULL && i < s->waiters->len;)
        {
          DrainWaiter w = g_array_index (s->waiters, DrainWaiter, i);
          if (!match (w.owner, (gconstpointer) (guintptr) w.func, w.destroy, user_data))
            {
              i++;
              continue;
            }
          g_array_remove_index (s->waiters, i);
          drain_waiter_cancel (&w);
          dropped++;
          i = 0;
        }
    }
  return dropped;
}

/* ---- writing out ------------------------------------------------------------ */

static void
session_flush (MynaSession *s)
{
  if (s->fd < 0)
    {
      /* No connection (hibernated): nothing can go out. */
      g_string_truncate (s->out, 0);
      s->out_off = 0;
      s->blocked = FALSE;
      session_account (s);
      return;
    }
  if (s->handshaking)
    return;
  while (s->out_off < s->out->len)
    {
      gssize n = session_transport_write (s, s->out->str + s->out_off,
                                          s->out->len - s->out_off);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN)
            {
              /* What went out leaves the buffer, so that a client that
               * keeps reading does not grow it. */
              s->blocked = TRUE;
              if (s->out_off >= COMPACT_AT && s->out_off >= s->out->len / 2)
                {
                  g_string_erase (s->out, 0, (gssize) s->out_off);
                  s->out_off = 0;
                }
              session_account (s);
              session_check_soft (s);
              session_update_events (s);
              session_wake_waiters (s);
              return;
            }
          g_debug ("%s: send: %s", s->peer, g_strerror (errno));
          s->out_off = s->out->len;
          break;
        }
      s->out_off += (gsize) n;
    }
  s->blocked = FALSE;
  g_string_truncate (s->out, 0);
  s->out_off = 0;
  session_account (s);
  /* An idle session keeps no large buffer. */
  if (s->out->allocated_len > 4096)
    {
      g_string_free (s->out, TRUE);
      s->out = g_string_sized_new (0);
    }
  session_check_soft (s);
  session_update_events (s);
  if (s->starttls_pending)
    tls_start (s);
  session_wake_waiters (s);
}

void
myna_session_send_raw (MynaSession *session, const char *xml, gssize len)
{
  g_return_if_fail (session != NULL && xml != NULL);
  session_write (session, xml, len < 0 ? strlen (xml) : (gsize) len);
}

static gboolean is_stanza_name (const char *name);

/* Whether @stanza is a message, presence or iq of the client namespace
 * (what MYNA_EVENT_STANZA_TO_CLIENT sees). */
static gboolean
is_client_stanza (MynaStanza *stanza)
{
  const char *ns = myna_stanza_get_ns (stanza);

  return is_stanza_name (myna_stanza_get_name (stanza))
         && (ns == NULL || strcmp (ns, MYNA_NS_CLIENT) == 0);
}

gboolean
myna_session_to_client_taken (MynaSession *session, MynaStanza *stanza)
{
  if (session->state == STATE_BOUND && is_client_stanza (stanza))
    {
      MynaCall call = { session->server, session->host, session, session->jid, session->jid };

      if (myna_router_fire (session->server->router, session->host,
                            MYNA_EVENT_STANZA_TO_CLIENT, &call, stanza) == MYNA_HANDLED)
        return TRUE;
    }
  if (session->hibernated)
    {
      g_debug ("%s: a <%s/> to a hibernated session, taken by no module, dropped",
               session->peer, myna_stanza_get_name (stanza));
      return TRUE;
    }
  return FALSE;
}

void
myna_session_send (MynaSession *session, MynaStanza *stanza)
{
  g_return_if_fail (session != NULL && stanza != NULL);

  if (myna_session_to_client_taken (session, stanza))
    return;

  GString *buf = g_string_sized_new (256);
  myna_stanza_serialize (stanza, MYNA_NS_CLIENT, buf);
  session_write (session, buf->str, buf->len);
  session->server->stanzas_out++;
  g_string_free (buf, TRUE);
}

/* ---- stream header and errors -------------------------------------------- */

/* A stream id: 128 bits from GnuTLS's nonce generator (a CSPRNG in user
 * space), in hex.  RFC 6120 4.7.3 wants ids unpredictable; GLib's
 * g_uuid_string_random draws from a Mersenne Twister and formats with
 * printf, which was 1 % of the main thread's time per login. */
static char *
stream_id_new (void)
{
  static const char hex[] = "0123456789abcdef";
  guint8 raw[16];
  char *id = g_malloc (2 * sizeof raw + 1);

  if (gnutls_rnd (GNUTLS_RND_NONCE, raw, sizeof raw) < 0)
    for (gsize i = 0; i < sizeof raw; i++)
      raw[i] = (guint8) g_random_int ();
  for (gsize i = 0; i < sizeof raw; i++)
    {
      id[2 * i] = hex[raw[i] >> 4];
      id[2 * i + 1] = hex[raw[i] & 15];
    }
  id[2 * sizeof raw] = '\0';
  return id;
}

static void
session_send_header (MynaSession *s, const char *to_attr)
{
  g_autoptr(GString) h = g_string_new ("<?xml version='1.0'?><stream:stream "
                                       "xmlns='jabber:client' "
                                       "xmlns:stream='http://etherx.jabber.org/streams' id='");
  g_free (s->stream_id);
  s->stream_id = stream_id_new ();
  g_string_append (h, s->stream_id);
  g_string_append (h, "' from='");
  myna_xml_escape_append (h, s->host != NULL ? s->host->name : (to_attr ? to_attr : ""), -1);
  g_string_append (h, "' version='1.0' xml:lang='en'>");
  s->header_sent = TRUE;
  session_write (s, h->str, h->len);
}

static void
session_send_features (MynaSession *s)
{
  g_autoptr(MynaStanza) f = myna_stanza_new ("features", MYNA_NS_STREAMS);
  g_autoptr(GString) out = g_string_new (NULL);
  gboolean tls_only = !s->secure && s->server->require_encryption;

  if (!s->secure && s->state == STATE_OPEN && s->server->tls != NULL)
    {
      MynaStanza *st = myna_stanza_add_child (f, "starttls", NS_TLS);
      if (s->server->require_encryption)
        myna_stanza_add_child (st, "required", NS_TLS);
    }
  for (guint i = 0; s->host != NULL && !tls_only && i < s->host->stream_features->len; i++)
    {
      MynaFeaturesEntry *e = s->host->stream_features->pdata[i];
      MynaModule *previous = myna_module_enter (e->owner);
      e->func (s, f, e->data);
      myna_module_leave (previous);
    }
  /* The stream prefix is bound to MYNA_NS_STREAMS in our header. */
  g_string_append (out, "<stream:features");
  if (myna_stanza_get_n_children (f) == 0)
    g_string_append (out, "/>");
  else
    {
      g_string_append_c (out, '>');
      for (guint i = 0; i < myna_stanza_get_n_children (f); i++)
        myna_stanza_serialize (myna_stanza_get_child_nth (f, i), MYNA_NS_CLIENT, out);
      g_string_append (out, "</stream:features>");
    }
  session_write (s, out->str, out->len);
}

static void
reap_schedule (MynaSession *s);

void
myna_session_close (MynaSession *session, const char *condition, const char *text)
{
  g_return_if_fail (session != NULL);
  session_close (session, condition, text, TRUE);
}

void
myna_session_close_with (MynaSession *session, const char *condition, const char *text,
                         MynaStanza *application)
{
  g_return_if_fail (session != NULL && condition != NULL);
  session_close_full (session, condition, text, application, TRUE);
}

static void
session_close (MynaSession *s, const char *condition, const char *text, gboolean log)
{
  session_close_full (s, condition, text, NULL, log);
}

/* Sends the stream error (@app: an application-specific condition after
 * the text, or NULL; logged when @log), closes the stream and queues @s
 * for the reaper. */
static void
session_close_full (MynaSession *s, const char *condition, const char *text, MynaStanza *app,
                    gboolean log)
{
  if (s->state == STATE_CLOSING)
    return;
  if (!s->header_sent)
    session_send_header (s, NULL);
  if (condition != NULL)
    {
      g_autoptr(GString) e = g_string_new ("<stream:error><");
      g_string_append_printf (e, "%s xmlns='" MYNA_NS_STREAM_ERRORS "'/>", condition);
      if (text != NULL)
        {
          g_string_append (e, "<text xmlns='" MYNA_NS_STREAM_ERRORS "' xml:lang='en'>");
          myna_xml_escape_append (e, text, -1);
          g_string_append (e, "</text>");
        }
      if (app != NULL)
        myna_stanza_serialize (app, NULL, e);
      g_string_append (e, "</stream:error>");
      session_write (s, e->str, e->len);
      if (strcmp (condition, "system-shutdown") != 0)
        {
          s->server->streams_errored++;
          if (log)
            g_message ("%s: stream error <%s/>%s%s", s->peer, condition,
                       text ? ": " : "", text ? text : "");
        }
    }
  session_write (s, "</stream:stream>", 16);
  if (s->state == STATE_BOUND || s->state == STATE_AUTHED)
    {
      SessionState was = s->state;
      s->state = STATE_CLOSING;
      if (was == STATE_BOUND && s->host != NULL)
        {
          MynaCall call = { s->server, s->host, s, s->jid, NULL };
          myna_host_unregister_session (s->host, s);
          myna_router_fire (s->server->router, s->host, MYNA_EVENT_SESSION_CLOSED,
                            &call, NULL);
        }
    }
  s->state = STATE_CLOSING;
  if (s->drain_timer != NULL)
    myna_timer_stop (s->drain_timer);
  session_cancel_waiters (s);
  if (s->watch != NULL)
    myna_poller_modify (s->watch, 0);
  /* What is queued goes out before the half-close. */
  session_flush (s);
  /* Half-close: the peer reads the error, then sees end of stream. */
  if (s->tls != NULL && !s->handshaking)
    gnutls_bye (s->tls, GNUTLS_SHUT_WR);
  if (s->fd >= 0)
    shutdown (s->fd, SHUT_WR);
  reap_schedule (s);
}

/* ---- the reaper ---------------------------------------------------------- */

static gboolean
reap_run (gpointer unused)
{
  g_autoptr(GPtrArray) queue = g_steal_pointer (&reap_queue);

  reap_source = 0;
  for (guint i = 0; queue != NULL && i < queue->len; i++)
    myna_connection_free (queue->pdata[i]);
  return G_SOURCE_REMOVE;
}

static void
reap_schedule (MynaSession *s)
{
  if (s->reaping)
    return;
  s->reaping = TRUE;
  if (reap_queue == NULL)
    reap_queue = g_ptr_array_new ();
  g_ptr_array_add (reap_queue, s);
  if (reap_source == 0)
    {
      GSource *src = g_idle_source_new ();
      g_source_set_priority (src, G_PRIORITY_HIGH);
      g_source_set_callback (src, reap_run, NULL, NULL);
      g_source_set_name (src, "myna-reaper");
      reap_source = g_source_attach (src, s->server->context);
      g_source_unref (src);
    }
}

/* ---- timers -------------------------------------------------------------- */

static void
session_auth_timeout (gpointer user_data)
{
  MynaSession *s = user_data;

  if (s->state == STATE_HEADER || s->state == STATE_OPEN)
    {
      s->server->counters.auth_timeouts++;
      myna_session_close (s, "connection-timeout", "not authenticated in time");
    }
}

/* ---- input --------------------------------------------------------------- */

static void
session_apply_limits (MynaSession *s)
{
  if (s->xml == NULL)
    return;
  const MynaLimits *l = LIMITS (s);
  MynaXmlLimits xl = {
    .max_stanza_size = s->state >= STATE_AUTHED ? l->max_stanza_size
                                                 : l->max_stanza_size_preauth,
    .max_depth = l->max_depth,
    .max_attrs = l->max_attrs,
  };
  myna_xml_stream_set_limits (s->xml, &xl);
}

/* Advances the TLS handshake. */
static void
tls_handshake_step (MynaSession *s)
{
  int rc = gnutls_handshake (s->tls);

  if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED)
    {
      myna_poller_modify (s->watch, gnutls_record_get_direction (s->tls) ? EPOLLOUT : EPOLLIN);
      return;
    }
  if (rc < 0)
    {
      g_message ("%s: TLS handshake failed: %s", s->peer, gnutls_strerror (rc));
      /* Best effort: the client learns why (e.g. no common cipher suite)
       * instead of seeing the connection drop. */
      gnutls_alert_send_appropriate (s->tls, rc);
      s->handshaking = FALSE;
      gnutls_deinit (s->tls);
      s->tls = NULL;
      s->header_sent = TRUE;        /* nothing more can be said */
      s->reaping = FALSE;
      myna_session_close (s, NULL, NULL);
      return;
    }
  s->handshaking = FALSE;
  s->secure = TRUE;
  g_autofree char *desc = gnutls_session_get_desc (s->tls);
  g_debug ("%s: TLS established: %s%s", s->peer, desc,
           gnutls_session_is_resumed (s->tls) ? " (resumed)" : "");
  myna_poller_modify (s->watch, EPOLLIN);
  session_flush (s);
}

static void
tls_start (MynaSession *s)
{
  s->starttls_pending = FALSE;
  s->tls = myna_tls_session_new (s->server->tls, s->fd);
  if (s->tls == NULL)
    {
      myna_session_close (s, "internal-server-error", "cannot start TLS");
      return;
    }
  s->handshaking = TRUE;
  myna_xml_stream_reset (s->xml);
  tls_handshake_step (s);
}

/* Reads into @buf: bytes, 0 at end of stream, -1 with errno. */
static gssize
session_transport_read (MynaSession *s, char *buf, gsize len)
{
  if (s->tls != NULL)
    {
      ssize_t n = gnutls_record_recv (s->tls, buf, len);
      if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
        {
          errno = EAGAIN;
          return -1;
        }
      if (n == GNUTLS_E_PREMATURE_TERMINATION)
        return 0;
      if (n < 0)
        {
          g_debug ("%s: TLS: %s", s->peer, gnutls_strerror ((int) n));
          errno = EPROTO;
          return -1;
        }
      return n;
    }
  return recv (s->fd, buf, len, 0);
}

/* ---- the byte-rate limit (token bucket) ----------------------------------- */

static void session_read (MynaSession *s);

static void
rate_resume (gpointer data)
{
  MynaSession *s = data;

  s->rate_paused = FALSE;
  session_update_events (s);
  session_read (s);
}

/* Refills the bucket; FALSE when it is empty and reading must wait. */
static gboolean
rate_allows (MynaSession *s)
{
  const MynaLimits *l = LIMITS (s);
  gint64 now = g_get_monotonic_time ();

  if (l->rate == 0)
    return TRUE;
  s->tokens = MIN ((double) l->burst, s->tokens + (double) l->rate * (double) (now - s->tokens_at) / 1e6);
  s->tokens_at = now;
  return s->tokens > 0;
}

/* Stops reading until the bucket has refilled above zero: the client is
 * slowed down, not dropped (TCP pushes back on it). */
static void
rate_pause (MynaSession *s)
{
  const MynaLimits *l = LIMITS (s);
  guint ms = (guint) MAX (MYNA_TIMER_RESOLUTION_MS, (-s->tokens + 1) * 1000.0 / (double) l->rate);

  s->rate_paused = TRUE;
  s->server->counters.rate_paused++;
  if (!s->rate_logged)
    {
      s->rate_logged = TRUE;
      g_info ("%s: over the byte-rate limit (%" G_GSIZE_FORMAT " bytes/s): reading paused",
              s->peer, l->rate);
    }
  if (s->rate_timer == NULL)
    s->rate_timer = myna_timer_new_owned (rate_resume, s, NULL);
  myna_timer_start (s->rate_timer, ms);
  session_update_events (s);
}

/* ---- backpressure from the storage backlog --------------------------------- */

/* Stops reading from @s while the server's storage backlog is over its
 * high watermark: TCP then pushes back on the client, as for the rate
 * limit.  Reading resumes for all such sessions together
 * (myna_connections_storage_backlog). */
static void
storage_pause (MynaSession *s)
{
  if (s->storage_paused)
    return;
  s->storage_paused = TRUE;
  s->server->storage_paused_sessions++;
  session_update_events (s);
}

/* Forgets @s's storage pause (its transport goes, or it is freed). */
static void
storage_unpause (MynaSession *s)
{
  if (!s->storage_paused)
    return;
  s->storage_paused = FALSE;
  s->server->storage_paused_sessions--;
}

void
myna_connections_storage_backlog (MynaStorage *storage, gboolean over, guint pending,
                                  guint64 pending_bytes, gpointer data)
{
  MynaServer *server = data;
  g_autoptr(GPtrArray) paused = NULL;
  GHashTableIter it;
  gpointer key;

  if (over)
    {
      /* Sessions stop as they next try to read (session_read), so the
       * backlog grows at most by what the read in progress parses. */
      if (server->storage_paused)
        return;
      server->storage_paused = TRUE;
      server->storage_paused_at = g_get_monotonic_time ();
      server->counters.storage_backpressure_pauses++;
      g_info ("storage backlog over its high watermark (%u writes, %" G_GUINT64_FORMAT
              " bytes not yet committed): reading from clients paused",
              pending, pending_bytes);
      return;
    }
  if (!server->storage_paused)
    return;
  server->storage_paused = FALSE;
  g_info ("storage backlog down to %u writes (%" G_GUINT64_FORMAT " bytes): reading from "
          "%u clients resumed after %" G_GINT64_FORMAT " ms",
          pending, pending_bytes, server->storage_paused_sessions,
          (g_get_monotonic_time () - server->storage_paused_at) / 1000);
  paused = g_ptr_array_new ();
  g_hash_table_iter_init (&it, server->connections);
  while (g_hash_table_iter_next (&it, &key, NULL))
    if (((MynaSession *) key)->storage_paused)
      g_ptr_array_add (paused, key);
  for (guint i = 0; i < paused->len; i++)
    {
      storage_unpause (paused->pdata[i]);
      session_update_events (paused->pdata[i]);
    }
  /* What GnuTLS decrypted already is not seen by epoll: read it now.  A
   * read may close sessions (freed later, by the reaper) or take the
   * backlog over again (the rest then stay paused). */
  for (guint i = 0; i < paused->len; i++)
    {
      MynaSession *s = paused->pdata[i];

      if (g_hash_table_contains (server->connections, s) && s->tls != NULL
          && s->state != STATE_CLOSING && gnutls_record_check_pending (s->tls) > 0)
        session_read (s);
    }
}

static void
session_read (MynaSession *s)
{
  char buf[READ_CHUNK];

  if (s->cut || s->fd < 0)
    return;
  if (s->handshaking)
    {
      tls_handshake_step (s);
      return;
    }
  if (s->rate_paused)
    return;
  if (s->server->storage_paused)
    {
      storage_pause (s);
      return;
    }
  if (!rate_allows (s))
    {
      rate_pause (s);
      return;
    }
  /* Plain sockets read a bounded number of chunks per wakeup; TLS drains
   * what GnuTLS has decrypted, since epoll cannot see its buffer. */
  for (int round = 0; s->state != STATE_CLOSING && !s->starttls_pending && !s->handshaking; round++)
    {
      if (round >= 4 && (s->tls == NULL || gnutls_record_check_pending (s->tls) == 0))
        break;
      gssize n = session_transport_read (s, buf, sizeof buf);

      if (n == 0)
        {
          g_debug ("%s: peer closed the connection", s->peer);
          s->eof = TRUE;
          if (!session_transport_lost (s, "connection closed by the peer"))
            myna_session_close (s, NULL, NULL);
          return;
        }
      if (n < 0)
        {
          int e = errno;
          if (e == EINTR)
            continue;
          if (e != EAGAIN)
            {
              g_debug ("%s: read: %s", s->peer, g_strerror (e));
              if (!session_transport_lost (s, g_strerror (e)))
                myna_session_close (s, NULL, NULL);
            }
          break;
        }
      session_mark_read (s);
      s->tokens -= (double) n;
      s->feeding = TRUE;
      myna_xml_stream_feed (s->xml, buf, (gsize) n, NULL);
      s->feeding = FALSE;
      if (s->server->storage_paused && s->state != STATE_CLOSING)
        {
          storage_pause (s);
          break;
        }
      if (LIMITS (s)->rate > 0 && s->tokens <= 0 && s->state != STATE_CLOSING)
        {
          rate_pause (s);
          break;
        }
      if ((gsize) n < sizeof buf && (s->tls == NULL || gnutls_record_check_pending (s->tls) == 0))
        break;
    }
}

static void
session_io (MynaPollWatch *watch, guint32 events, gpointer user_data)
{
  MynaSession *s = user_data;

  if (s->cut)
    return;
  if ((events & EPOLLOUT) && s->handshaking)
    {
      tls_handshake_step (s);
      return;
    }
  if (events & EPOLLOUT)
    session_flush (s);
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
    session_read (s);
}

/* Refuses a connection over the per-address cap with a stream error. */
static gboolean
connection_admit (MynaServer *server, MynaListener *listener, int fd, const char *peer,
                  const char *ip)
{
  guint max = myna_listener_get_limits (listener, server)->max_connections_per_ip;
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (server->per_ip, ip));
  static const char refusal[] =
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
    "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
    "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>too many connections from "
    "your address</text></stream:error></stream:stream>";

  if (max == 0 || n < max)
    {
      g_hash_table_insert (server->per_ip, g_strdup (ip), GUINT_TO_POINTER (n + 1));
      return TRUE;
    }
  server->counters.per_ip_refused++;
  g_message ("%s: refused: %u connections from %s already (max_connections_per_ip)",
             peer, n, ip);
  if (send (fd, refusal, sizeof refusal - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
    g_debug ("%s: %s", peer, g_strerror (errno));
  close (fd);
  return FALSE;
}

/* Drops every datum of @s, last first; a destroy notify may set more. */
static void
session_clear_data (MynaSession *s)
{
  while (s->data != NULL && s->data->len > 0)
    {
      SessionDatum d = g_array_index (s->data, SessionDatum, s->data->len - 1);
      g_array_set_size (s->data, s->data->len - 1);
      if (d.destroy != NULL)
        d.destroy (d.data);
    }
  g_clear_pointer (&s->data, g_array_unref);
}

/* Gives back @s's place in the per-address count (once). */
static void
session_release_ip (MynaSession *s)
{
  if (!s->ip_counted)
    return;
  s->ip_counted = FALSE;
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (s->server->per_ip, s->ip));
  if (n <= 1)
    g_hash_table_remove (s->server->per_ip, s->ip);
  else
    g_hash_table_insert (s->server->per_ip, g_strdup (s->ip), GUINT_TO_POINTER (n - 1));
}

MynaSession *
myna_connection_new (MynaServer *server, MynaListener *listener, int fd,
                     const char *peer, const char *ip)
{
  if (!connection_admit (server, listener, fd, peer, ip))
    return NULL;

  MynaSession *s = g_new0 (MynaSession, 1);

  s->server = server;
  s->listener = listener;
  s->fd = fd;
  s->peer = g_strdup (peer);
  s->ip = g_strdup (ip);
  s->ip_counted = TRUE;
  session_mark_read (s);
  s->tokens = (double) LIMITS (s)->burst;
  s->tokens_at = s->last_read;
  s->out = g_string_sized_new (0);
  s->xml = myna_xml_stream_new (&stream_callbacks, s);
  session_apply_limits (s);
  s->timer = myna_timer_new_owned (session_auth_timeout, s, NULL);
  myna_timer_start (s->timer, LIMITS (s)->auth_timeout_ms);
  s->watch = myna_poller_add (server->poller, fd, EPOLLIN, session_io, s);
  if (s->watch == NULL)
    {
      /* Never watched, it would sit until its timeout: closed at once. */
      myna_connection_free (s);
      return NULL;
    }
  g_hash_table_add (server->connections, s);
  server->conn_high_water = MAX (server->conn_high_water,
                                 g_hash_table_size (server->connections));
  g_debug ("%s: connected", s->peer);
  if (g_strcmp0 (myna_listener_get_kind (listener), "c2s_tls") == 0)
    tls_start (s);
  return s;
}

void
myna_connection_free (MynaSession *s)
{
  if (s == NULL)
    return;
  if (reap_queue != NULL)
    g_ptr_array_remove_fast (reap_queue, s);
  if (s->cut && cut_queue != NULL)
    {
      guint i;
      if (g_ptr_array_find (cut_queue, s, &i))
        cut_queue->pdata[i] = NULL;
    }
  if (s->drain_scheduled && drain_queue != NULL)
    g_ptr_array_remove_fast (drain_queue, s);
  if (drain_running != NULL)
    {
      guint i;
      if (g_ptr_array_find (drain_running, s, &i))
        drain_running->pdata[i] = NULL;
    }
  if (s->flush_queued)
    {
      guint i;
      if (g_ptr_array_find (s->server->flush_queue, s, &i))
        s->server->flush_queue->pdata[i] = NULL;
    }
  if (s->state == STATE_BOUND && s->host != NULL)
    myna_host_unregister_session (s->host, s);
  if (g_hash_table_remove (s->server->connections, s) && s->hibernated)
    s->server->sessions_hibernated--;
  storage_unpause (s);
  session_unlink_read (s);
  session_cancel_waiters (s);
  session_clear_data (s);
  if (s->fd < 0)
    myna_poller_remove (s->watch);
  else
    {
      myna_poller_remove_closing (s->watch);  /* close() below deregisters it */
      /* Unread input would turn close() into a reset that can destroy the
       * stream error still in flight: drain what is there. */
      char sink[4096];
      for (int i = 0; !s->eof && i < 16 && recv (s->fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++)
        ;
      close (s->fd);
    }
  myna_timer_free (s->timer);
  myna_timer_free (s->rate_timer);
  myna_timer_free (s->drain_timer);
  session_release_ip (s);
  if (s->tls != NULL)
    gnutls_deinit (s->tls);
  myna_xml_stream_free (s->xml);
  if (s->jid != NULL)
    myna_jid_unref (s->jid);
  /* Its queue leaves the server's total. */
  g_string_truncate (s->out, 0);
  s->out_off = 0;
  session_account (s);
  g_string_free (s->out, TRUE);
  g_free (s->stream_id);
  g_free (s->peer);
  g_free (s->ip);
  g_free (s);
}

/* ---- stream callbacks ---------------------------------------------------- */

static void
stream_open (gpointer user_data, MynaStanza *header)
{
  MynaSession *s = user_data;
  const char *to = myna_stanza_get_attr (header, "to");
  const char *version = myna_stanza_get_attr (header, "version");
  const char *ns = myna_xml_stream_get_default_ns (s->xml);
  g_autofree char *domain = to != NULL ? myna_jid_prep_domain (to, NULL) : NULL;

  if (s->state == STATE_HEADER)
    {
      s->host = myna_server_get_host (s->server, domain);
      /* A component's domain has no accounts: no client logs in to it. */
      if (s->host != NULL && s->host->component)
        s->host = NULL;
    }
  if (g_strcmp0 (ns, MYNA_NS_CLIENT) != 0)
    {
      myna_session_close (s, "invalid-namespace", "the stream's namespace must be jabber:client");
      return;
    }
  if (s->host == NULL || (domain != NULL && strcmp (domain, s->host->name) != 0))
    {
      myna_session_close (s, "host-unknown", NULL);
      return;
    }
  if (version == NULL || strtol (version, NULL, 10) < 1)
    {
      session_send_header (s, to);
      myna_session_close (s, "unsupported-version", "XMPP 1.0 streams only");
      return;
    }
  session_send_header (s, to);
  if (s->state == STATE_HEADER)
    s->state = STATE_OPEN;
  session_send_features (s);
}

/* Checks and stamps `from` (RFC 6120 §8.1.2.1).  FALSE when the stream
 * was closed for it. */
static gboolean
session_stamp_from (MynaSession *s, MynaStanza *stanza)
{
  const char *from = myna_stanza_get_from (stanza);
  const char *mine = myna_jid_to_string (s->jid);

  if (from != NULL && strcmp (from, mine) != 0
      && strcmp (from, myna_jid_bare_string (s->jid)) != 0)
    {
      g_autoptr(MynaJid) parsed = myna_jid_parse (from, NULL);
      if (parsed == NULL
          || (!myna_jid_equal (parsed, s->jid)
              && !(myna_jid_is_bare (parsed) && myna_jid_bare_equal (parsed, s->jid))))
        {
          myna_session_close (s, "invalid-from", "the 'from' address is not yours");
          return FALSE;
        }
    }
  myna_stanza_set_attr (stanza, "from", mine);
  return TRUE;
}

static gboolean
is_stanza_name (const char *name)
{
  return strcmp (name, "message") == 0 || strcmp (name, "presence") == 0
         || strcmp (name, "iq") == 0;
}

/* <starttls/> (RFC 6120 §5.4.2): proceed, then the TLS handshake once
 * <proceed/> is on the wire; bytes after it are not XML any more. */
static void
session_starttls (MynaSession *s)
{
  if (s->secure || s->state != STATE_OPEN || s->server->tls == NULL)
    {
      session_write (s, "<failure xmlns='" NS_TLS "'/>", -1 + sizeof ("<failure xmlns='" NS_TLS "'/>"));
      myna_session_close (s, NULL, NULL);
      return;
    }
  myna_xml_stream_pause (s->xml);
  s->starttls_pending = TRUE;
  session_write (s, "<proceed xmlns='" NS_TLS "'/>", -1 + sizeof ("<proceed xmlns='" NS_TLS "'/>"));
}

static void
stream_stanza (gpointer user_data, MynaStanza *stanza)
{
  MynaSession *s = user_data;
  const char *name = myna_stanza_get_name (stanza);
  const char *ns = myna_stanza_get_ns (stanza);
  MynaCall call = { s->server, s->host, s, s->jid, NULL };

  if (s->state == STATE_CLOSING)
    return;
  s->server->stanzas_in++;
  if (g_strcmp0 (ns, NS_TLS) == 0 && strcmp (name, "starttls") == 0)
    {
      session_starttls (s);
      return;
    }
  if (!s->secure && s->server->require_encryption)
    {
      myna_session_close (s, "policy-violation", "encryption is required: use STARTTLS");
      return;
    }
  if (g_strcmp0 (ns, MYNA_NS_CLIENT) != 0 || s->state < STATE_AUTHED)
    {
      /* Stream-level negotiation: SASL, STARTTLS, stream management… */
      if (myna_router_stream_element (s->server->router, &call, stanza) == MYNA_HANDLED)
        goto done;
      if (s->state < STATE_AUTHED)
        myna_session_close (s, "not-authorized", "authenticate first");
      else
        myna_session_close (s, "unsupported-stanza-type", NULL);
      return;
    }
  if (!is_stanza_name (name))
    {
      myna_session_close (s, "unsupported-stanza-type", NULL);
      return;
    }
  s->stanzas_in++;
  if (s->state == STATE_AUTHED && strcmp (name, "iq") != 0)
    {
      myna_session_close (s, "not-authorized", "bind a resource first");
      return;
    }
  if (!session_stamp_from (s, stanza))
    return;
  /* The reply to a module's IQ request goes to it, before any hook. */
  if (myna_iq_requests_take (s->server, stanza))
    goto done;
  if (myna_router_fire (s->server->router, s->host, MYNA_EVENT_STANZA_FROM_CLIENT,
                        &call, stanza) != MYNA_HANDLED)
    myna_router_route (s->server->router, &call, stanza);
done:
  return;
}

static void
stream_close (gpointer user_data)
{
  MynaSession *s = user_data;
  g_debug ("%s: stream closed by peer", s->peer);
  myna_session_close (s, NULL, NULL);
}

static void
stream_error (gpointer user_data, const char *condition, const char *text)
{
  myna_session_close (user_data, condition, text);
}

static const MynaXmlStreamCallbacks stream_callbacks = {
  .stream_open = stream_open,
  .stanza = stream_stanza,
  .stream_close = stream_close,
  .error = stream_error,
};

/* ---- session API ---------------------------------------------------------- */

gboolean
myna_session_is_hibernated (MynaSession *session)
{
  g_return_val_if_fail (session != NULL, FALSE);
  return session->hibernated;
}

MynaHost *
myna_session_get_host (MynaSession *session)
{
  return session->host;
}

MynaJid *
myna_session_get_jid (MynaSession *session)
{
  return session->jid;
}

gboolean
myna_session_is_authenticated (MynaSession *session)
{
  return session->state == STATE_AUTHED || session->state == STATE_BOUND;
}

gboolean
myna_session_is_open (MynaSession *session)
{
  return session != NULL && session->state != STATE_CLOSING;
}

gboolean
myna_session_is_secure (MynaSession *session)
{
  return session->secure;
}

int
myna_session_get_priority (MynaSession *session)
{
  return session->priority;
}

void
myna_session_set_priority (MynaSession *session, int priority)
{
  session->priority = CLAMP (priority, -128, 127);
}

gboolean
myna_session_is_available (MynaSession *session)
{
  return session->available;
}

void
myna_session_set_available (MynaSession *session, gboolean available)
{
  session->available = available;
}

GBytes *
myna_session_get_channel_binding (MynaSession *session, const char *type)
{
  g_return_val_if_fail (session != NULL, NULL);
  return session->secure && session->tls != NULL
           ? myna_tls_channel_binding (session->tls, type) : NULL;
}

gint64
myna_session_get_last_activity (MynaSession *session)
{
  return session->last_read;
}

const char *
myna_session_get_ip (MynaSession *session)
{
  return session->ip;
}

const char *
myna_session_get_peer (MynaSession *session)
{
  return session->peer;
}

static SessionDatum *
session_find_datum (MynaSession *s, GQuark key, guint *index)
{
  for (guint i = 0; key != 0 && s->data != NULL && i < s->data->len; i++)
    if (g_array_index (s->data, SessionDatum, i).key == key)
      {
        if (index != NULL)
          *index = i;
        return &g_array_index (s->data, SessionDatum, i);
      }
  return NULL;
}

/* module name → (key → GQuark of "MODULE/KEY"): the scoped quarks already
 * made, so that a lookup allocates nothing (sessions' data is read on
 * every broadcast).  Main thread only, like all session calls. */
static GHashTable *scoped_quarks;

/* The quark of @key as the current module sees it: "MODULE/KEY" while a
 * module's code runs (its own namespace: no module reads or overwrites
 * another's data by name), @key itself for core code.  @create FALSE: 0
 * for a key never set. */
static GQuark
session_data_quark (const char *key, gboolean create)
{
  MynaModule *mod = myna_module_current ();

  if (mod == NULL)
    return create ? g_quark_from_string (key) : g_quark_try_string (key);

  const char *name = myna_module_owner_name (mod);
  GHashTable *keys = scoped_quarks != NULL ? g_hash_table_lookup (scoped_quarks, name) : NULL;
  gpointer q = keys != NULL ? g_hash_table_lookup (keys, key) : NULL;

  if (q != NULL || !create)
    return GPOINTER_TO_UINT (q);
  if (scoped_quarks == NULL)
    scoped_quarks = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                           (GDestroyNotify) g_hash_table_unref);
  if (keys == NULL)
    {
      keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      g_hash_table_insert (scoped_quarks, g_strdup (name), keys);
    }
  g_autofree char *scoped = g_strconcat (name, "/", key, NULL);
  GQuark made = g_quark_from_string (scoped);
  g_hash_table_insert (keys, g_strdup (key), GUINT_TO_POINTER (made));
  return made;
}

/* The entry records the module setting it, so that its destroy notify, if
 * it is code of that module, runs before the module is closed. */
void
myna_session_set_data (MynaSession *session, const char *key, gpointer data,
                       GDestroyNotify destroy)
{
  g_return_if_fail (session != NULL && key != NULL);

  GQuark q = session_data_quark (key, TRUE);
  guint i;
  SessionDatum *d = session_find_datum (session, q, &i);
  SessionDatum old = { 0 };

  if (d != NULL)
    {
      old = *d;
      if (data != NULL)
        *d = (SessionDatum) { q, data, destroy, myna_module_current () };
      else
        g_array_remove_index_fast (session->data, i);
    }
  else if (data != NULL)
    {
      SessionDatum fresh = { q, data, destroy, myna_module_current () };
      if (session->data == NULL)
        session->data = g_array_sized_new (FALSE, FALSE, sizeof (SessionDatum), 2);
      g_array_append_val (session->data, fresh);
    }
  /* Last: the old destroy notify may set data again. */
  if (old.destroy != NULL)
    old.destroy (old.data);
}

gpointer
myna_session_get_data (MynaSession *session, const char *key)
{
  g_return_val_if_fail (session != NULL && key != NULL, NULL);

  SessionDatum *d = session_find_datum (session, session_data_quark (key, FALSE), NULL);
  return d != NULL ? d->data : NULL;
}

/* Removes the first datum of @s that @match accepts; FALSE when none. */
static gboolean
session_drop_one (MynaSession *s, MynaSessionDataMatch match, gpointer user_data)
{
  for (guint i = 0; s->data != NULL && i < s->data->len; i++)
    {
      SessionDatum d = g_array_index (s->data, SessionDatum, i);
      if (!match (s, d.owner, d.destroy, user_data))
        continue;
      g_array_remove_index_fast (s->data, i);
      if (d.destroy != NULL)
        d.destroy (d.data);
      return TRUE;
    }
  return FALSE;
}

guint
myna_connections_drop_data (MynaServer *server, MynaSessionDataMatch match, gpointer user_data)
{
  g_return_val_if_fail (server != NULL && match != NULL, 0);

  /* Sessions are freed only by the reaper, never under a destroy notify. */
  g_autoptr(GList) sessions = g_hash_table_get_keys (server->connections);
  guint dropped = 0;

  for (GList *l = sessions; l != NULL; l = l->next)
    while (session_drop_one (l->data, match, user_data))
      dropped++;
  return dropped;
}

void
myna_session_restart_stream (MynaSession *session)
{
  g_return_if_fail (session != NULL);
  if (session->xml == NULL)
    return;                     /* hibernated: no stream */

  /* Safe inside a stream callback: the bytes after the current element
   * are parsed as the new stream. */
  myna_xml_stream_reset (session->xml);
  session_apply_limits (session);
}

/* Marks @session authenticated as @local; with @restart, the client's
 * next bytes start a new stream. */
static void
session_authenticate (MynaSession *session, const char *local, gboolean restart)
{
  g_return_if_fail (session != NULL && local != NULL);
  if (session->state == STATE_CLOSING)
    return;                     /* the client left during the check */
  g_return_if_fail (session->state == STATE_OPEN);
  g_return_if_fail (!session->host->component);

  g_autoptr(GError) error = NULL;
  MynaJid *jid = myna_jid_new (local, session->host->name, NULL, &error);

  if (jid == NULL)
    {
      g_warning ("%s: cannot authenticate as '%s': %s", session->peer, local, error->message);
      myna_session_close (session, "internal-server-error", NULL);
      return;
    }
  session->jid = jid;
  session->state = STATE_AUTHED;
  myna_timer_stop (session->timer);
  /* The client's next bytes start a new stream (RFC 6120 §6.4.6); this
   * may run from an asynchronous password check, outside any parse. */
  if (restart)
    myna_session_restart_stream (session);
  g_info ("%s: authenticated as %s%s", session->peer, myna_jid_bare_string (jid),
          restart ? "" : " (no stream restart)");
  MynaCall call = { session->server, session->host, session, session->jid, NULL };
  myna_router_fire (session->server->router, session->host,
                    MYNA_EVENT_SESSION_AUTHENTICATED, &call, NULL);
}

void
myna_session_set_authenticated (MynaSession *session, const char *local)
{
  session_authenticate (session, local, TRUE);
}

void
myna_session_set_authenticated_in_stream (MynaSession *session, const char *local)
{
  session_authenticate (session, local, FALSE);
}

gboolean
myna_session_bind (MynaSession *session, const char *resource, GError **error)
{
  g_return_val_if_fail (session != NULL && resource != NULL, FALSE);

  if (session->state != STATE_AUTHED)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   "the session is not waiting for a bind");
      return FALSE;
    }
  MynaJid *full = myna_jid_with_resource (session->jid, resource, error);
  if (full == NULL)
    return FALSE;
  myna_jid_unref (session->jid);
  session->jid = full;
  session->state = STATE_BOUND;
  myna_host_register_session (session->host, session);
  MynaCall call = { session->server, session->host, session, session->jid, NULL };
  myna_router_fire (session->server->router, session->host, MYNA_EVENT_SESSION_BOUND,
                    &call, NULL);
  return TRUE;
}

/* ---- hibernation and resumption (XEP-0198) --------------------------------- */

/* Frees @s's connection — watch, socket, TLS, parser, output queue, its
 * place in the per-address count — and keeps the session.  @farewell
 * (nullable) is written first, best effort, and the stream half-closed.
 * Never called while @s's parser is feeding. */
static void
session_drop_transport (MynaSession *s, const char *farewell)
{
  if (s->fd < 0)
    return;
  if (farewell != NULL && !s->cut && !s->handshaking)
    {
      g_string_append (s->out, farewell);
      session_flush (s);
      if (s->tls != NULL)
        gnutls_bye (s->tls, GNUTLS_SHUT_WR);
      shutdown (s->fd, SHUT_WR);
    }
  if (s->flush_queued)
    {
      guint i;
      if (g_ptr_array_find (s->server->flush_queue, s, &i))
        s->server->flush_queue->pdata[i] = NULL;
      s->flush_queued = FALSE;
    }
  if (s->cut && cut_queue != NULL)
    {
      guint i;
      if (g_ptr_array_find (cut_queue, s, &i))
        cut_queue->pdata[i] = NULL;
    }
  s->cut = FALSE;
  myna_poller_remove_closing (s->watch);
  s->watch = NULL;
  close (s->fd);
  s->fd = -1;
  if (s->tls != NULL)
    gnutls_deinit (s->tls);
  s->tls = NULL;
  s->handshaking = FALSE;
  s->starttls_pending = FALSE;
  g_clear_pointer (&s->xml, myna_xml_stream_free);
  g_string_truncate (s->out, 0);
  s->out_off = 0;
  s->blocked = FALSE;
  session_account (s);
  if (s->drain_timer != NULL)
    myna_timer_stop (s->drain_timer);
  if (s->rate_timer != NULL)
    myna_timer_stop (s->rate_timer);
  s->rate_paused = FALSE;
  storage_unpause (s);
  s->eof = FALSE;
  session_unlink_read (s);
  session_release_ip (s);
}

/* The connection of @s ended without the client closing its stream: a
 * bound session is offered to MYNA_EVENT_SESSION_TRANSPORT_LOST.  TRUE
 * when a handler kept it (now hibernated) or closed it; FALSE when the
 * caller closes it. */
static gboolean
session_transport_lost (MynaSession *s, const char *why)
{
  if (s->state != STATE_BOUND || s->hibernated || s->reaping || s->server->stopping)
    return FALSE;

  MynaCall call = { s->server, s->host, s, s->jid, NULL };

  if (myna_router_fire (s->server->router, s->host, MYNA_EVENT_SESSION_TRANSPORT_LOST,
                        &call, NULL) != MYNA_HANDLED)
    return FALSE;
  if (s->state != STATE_BOUND)
    return TRUE;                /* a handler closed it */
  g_info ("%s: connection of %s lost (%s): session hibernated", s->peer,
          myna_jid_to_string (s->jid), why);
  session_drop_transport (s, NULL);
  s->hibernated = TRUE;
  s->server->sessions_hibernated++;
  return TRUE;
}

gboolean
myna_session_resume (MynaSession *old, MynaSession *fresh, GError **error)
{
  g_return_val_if_fail (old != NULL && fresh != NULL && old != fresh, FALSE);

  if (old->state != STATE_BOUND || old->reaping || fresh->state != STATE_AUTHED
      || fresh->reaping || fresh->cut || fresh->fd < 0 || fresh->handshaking
      || old->host != fresh->host || !myna_jid_bare_equal (old->jid, fresh->jid))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "only a bound session can be resumed, by an authenticated unbound "
                   "session of the same account");
      return FALSE;
    }
  if (!old->hibernated)
    session_drop_transport (old, "<stream:error><conflict xmlns='" MYNA_NS_STREAM_ERRORS "'/>"
                                 "<text xmlns='" MYNA_NS_STREAM_ERRORS "' xml:lang='en'>"
                                 "the session was resumed on another connection</text>"
                                 "</stream:error></stream:stream>");
  if (fresh->flush_queued)
    {
      guint i;
      if (g_ptr_array_find (fresh->server->flush_queue, fresh, &i))
        fresh->server->flush_queue->pdata[i] = NULL;
      fresh->flush_queued = FALSE;
    }
  /* The socket gets a watch calling back @old. */
  myna_poller_remove (fresh->watch);
  fresh->watch = NULL;
  old->watch = myna_poller_add (old->server->poller, fresh->fd, EPOLLIN, session_io, old);
  if (old->watch == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot watch the connection");
      session_close (fresh, "internal-server-error", NULL, TRUE);
      return FALSE;
    }
  old->fd = fresh->fd;
  fresh->fd = -1;
  old->listener = fresh->listener;
  old->tls = g_steal_pointer (&fresh->tls);
  old->secure = fresh->secure;
  old->handshaking = FALSE;
  old->header_sent = TRUE;
  old->xml = g_steal_pointer (&fresh->xml);
  myna_xml_stream_set_user_data (old->xml, old);
  g_free (old->stream_id);
  old->stream_id = g_steal_pointer (&fresh->stream_id);
  g_free (old->peer);
  old->peer = g_strdup (fresh->peer);
  session_release_ip (old);
  g_free (old->ip);
  old->ip = g_strdup (fresh->ip);
  old->ip_counted = fresh->ip_counted;
  fresh->ip_counted = FALSE;
  /* The queue (and its share of the output total) moves too. */
  GString *empty = old->out;
  old->out = fresh->out;
  old->out_off = fresh->out_off;
  old->blocked = fresh->blocked;
  fresh->out = empty;
  fresh->out_off = 0;
  fresh->blocked = FALSE;
  session_account (fresh);
  session_account (old);
  old->tokens = fresh->tokens;
  old->tokens_at = fresh->tokens_at;
  old->rate_logged = fresh->rate_logged;
  old->eof = FALSE;
  if (old->hibernated)
    old->server->sessions_hibernated--;
  old->hibernated = FALSE;
  session_mark_read (old);
  session_apply_limits (old);
  session_update_events (old);
  /* The fresh session is gone without session/closed: it was never bound. */
  session_unlink_read (fresh);
  fresh->state = STATE_CLOSING;
  myna_timer_stop (fresh->timer);
  if (fresh->rate_timer != NULL)
    myna_timer_stop (fresh->rate_timer);
  if (fresh->drain_timer != NULL)
    myna_timer_stop (fresh->drain_timer);
  session_cancel_waiters (fresh);
  reap_schedule (fresh);
  /* Records GnuTLS decrypted already are not seen by epoll: read them soon. */
  if (old->tls != NULL && gnutls_record_check_pending (old->tls) > 0)
    {
      if (old->rate_timer == NULL)
        old->rate_timer = myna_timer_new_owned (rate_resume, old, NULL);
      myna_timer_start (old->rate_timer, 0);
    }
  g_info ("%s: session %s resumed", old->peer, myna_jid_to_string (old->jid));
  return TRUE;
}

void
myna_session_lose_transport (MynaSession *session, const char *condition, const char *text)
{
  g_return_if_fail (session != NULL);

  /* Inside its own parser the transport cannot go: closed as before. */
  if (!session->feeding && session_transport_lost (session, text != NULL ? text : "connection lost"))
    return;
  myna_session_close (session, condition, text);
}

guint64
myna_session_get_stanzas_received (MynaSession *session)
{
  g_return_val_if_fail (session != NULL, 0);
  return session->stanzas_in;
}

/* Releases the XML parser of every session silent for @idle_us: an idle
 * session then costs a few hundred bytes of parser state instead of the
 * ~17 KiB of a live libxml2 context, while busy sessions keep theirs and
 * pay no rebuild per read. */
guint
myna_connections_sweep (MynaServer *server, gint64 idle_us)
{
  gint64 now = g_get_monotonic_time ();
  guint released = 0;
  GList *link;

  /* Oldest first: stop at the first session read from recently.  A
   * session leaves the order here and comes back on its next read. */
  while ((link = server->read_order.head) != NULL)
    {
      MynaSession *s = link->data;

      if (now - s->last_read < idle_us)
        break;
      session_unlink_read (s);
      if (s->state != STATE_CLOSING && myna_xml_stream_get_memory (s->xml) > 4096)
        {
          myna_xml_stream_release_idle (s->xml);
          released++;
        }
    }
  return released;
}

/* ---- the host's registry of bound sessions -------------------------------- */

void
myna_host_register_session (MynaHost *host, MynaSession *session)
{
  const char *local = myna_jid_get_local (session->jid);
  GPtrArray *list = g_hash_table_lookup (host->accounts, local);

  if (list == NULL)
    {
      list = g_ptr_array_new ();
      g_hash_table_insert (host->accounts, g_strdup (local), list);
    }
  g_ptr_array_add (list, session);
}

void
myna_host_unregister_session (MynaHost *host, MynaSession *session)
{
  const char *local = myna_jid_get_local (session->jid);
  GPtrArray *list = g_hash_table_lookup (host->accounts, local);

  if (list == NULL)
    return;
  g_ptr_array_remove_fast (list, session);
  if (list->len == 0)
    g_hash_table_remove (host->accounts, local);
}

MynaSession *
myna_host_find_session (MynaHost *host, MynaJid *full)
{
  g_return_val_if_fail (host != NULL && full != NULL, NULL);

  if (myna_jid_get_local (full) == NULL)
    return NULL;
  GPtrArray *list = g_hash_table_lookup (host->accounts, myna_jid_get_local (full));

  for (guint i = 0; list != NULL && i < list->len; i++)
    {
      MynaSession *s = list->pdata[i];
      if (g_strcmp0 (myna_jid_get_resource (s->jid), myna_jid_get_resource (full)) == 0)
        return s;
    }
  return NULL;
}

GPtrArray *
myna_host_get_sessions (MynaHost *host, const char *local)
{
  GPtrArray *list = g_hash_table_lookup (host->accounts, local);
  GPtrArray *out = g_ptr_array_new ();

  for (guint i = 0; list != NULL && i < list->len; i++)
    g_ptr_array_add (out, list->pdata[i]);
  return out;
}

GPtrArray *
myna_host_list_sessions (MynaHost *host)
{
  g_return_val_if_fail (host != NULL, NULL);

  GPtrArray *out = g_ptr_array_new ();
  GHashTableIter it;
  gpointer value;

  g_hash_table_iter_init (&it, host->accounts);
  while (g_hash_table_iter_next (&it, NULL, &value))
    g_ptr_array_extend (out, value, NULL, NULL);
  return out;
}
