/* tests/bench/xmppload.c: an XMPP load generator for benchmarks.
 *
 * Plain TCP, epoll, one thread per -t, non-blocking sockets, and a minimal
 * client state machine of its own: stream open → SASL PLAIN → stream
 * restart → bind → optional initial presence.  Incoming bytes are split
 * into top-level elements by a small tag scanner (quotes, prefixes, PIs,
 * comments and CDATA tolerated) and each element is then inspected by
 * cheap substring search, so it works against any server (Myna, Prosody,
 * ejabberd) without an XML parser.
 *
 * Scenarios (-s): register, idle, logins, throughput, latency, churn, the
 * MUC ones (muc, muclat, mucrooms) and the PEP ones (pepsub, pep, peplat);
 * see usage().  latency sends each message at its own absolute deadline
 * (polling epoll and the clock), stamps it just before its send() and
 * times it when recv() returns it; it also reports the generator's own share (lateness against
 * the deadlines, receive delay against the kernel's receive timestamps,
 * CPU use, run-queue waits).  churn logs in and out waves of sessions and
 * samples the server's VmRSS after each (-R PID); see run_churn().
 * Accounts are PREFIX1..PREFIXN (default user1..userN) with password -x
 * (default "pw") on domain -D.  Each result is one machine-readable line
 * "RESULT scenario=… key=value …" on stdout; progress goes to stderr.
 *
 * Every loop is bounded: the whole run ends after the setup timeout (-T)
 * plus the measuring time (-d), or at SIGINT/SIGTERM.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* ---- options ---------------------------------------------------------- */

typedef enum { SC_REGISTER, SC_IDLE, SC_LOGINS, SC_THROUGHPUT, SC_LATENCY, SC_CHURN,
               SC_MUC, SC_MUCLAT, SC_MUCROOMS, SC_PEPSUB, SC_PEP, SC_PEPLAT } Scenario;
#define IS_MUC(sc) ((sc) == SC_MUC || (sc) == SC_MUCLAT || (sc) == SC_MUCROOMS)
#define IS_PEP(sc) ((sc) == SC_PEPSUB || (sc) == SC_PEP || (sc) == SC_PEPLAT)

static struct
{
  Scenario    scenario;
  const char *scenario_name;
  const char *server_label;
  const char *host;
  int         port;
  const char *domain;
  const char *prefix;
  const char *password;
  guint       first;        /* first account number */
  guint       n;            /* sessions / accounts; churn: sessions in all */
  guint       wave;         /* churn: sessions per wave */
  int         server_pid;   /* churn: whose RSS and descriptors to watch */
  double      settle;       /* churn: seconds between the two RSS samples */
  guint       concurrency;  /* logins in flight */
  guint       pairs;
  guint       window;
  double      rate;
  double      duration;     /* measuring time, seconds */
  double      setup_timeout;
  guint       threads;
  gboolean    presence;
  guint       sm_ack_every; /* stream management (XEP-0198): ack every N stanzas, 0: off */
  const char *muc_room;     /* muc, muclat: the room's bare JID; mucrooms: the service */
  guint       muc_rooms;    /* mucrooms: persistent rooms to create in all */
  const char *pep_node;     /* pep, peplat: the node published to */
  guint       pep_pad;      /* pep, peplat: padding bytes in each item */
  double      pep_drain;    /* pep, peplat: seconds to wait for the last deliveries */
  struct in_addr *sources;
  guint       n_sources;
  struct sockaddr_in dest;
} opt;

/* ---- shared state between threads ------------------------------------- */

static atomic_int  g_stop;        /* threads must wind down */
static atomic_int  g_go;          /* all sessions bound: start traffic */
static atomic_int  g_measuring;   /* counting deliveries / logins */
static atomic_uint g_bound;       /* sessions bound (idle/throughput/latency/churn wave) */
static atomic_uint g_failed;      /* sessions given up on during setup */
static atomic_int  g_wave;        /* churn: the wave under way (0: none yet) */
static atomic_uint g_wave_n;      /* churn: sessions in that wave */
static atomic_int  g_close_wave;  /* churn: the wave whose sessions must close */
static atomic_uint g_released;    /* churn: our close answered by the server's */
static atomic_uint g_dropped;     /* churn: bound sessions lost before our close */
static atomic_uint g_next_account;/* register: next account to create */
static gint64      g_pace_start_ns; /* CLOCK_MONOTONIC when traffic starts */
static gint64      g_timed_from_ns; /* latency: messages sent from here on are timed */
static gint64      g_real_to_mono_ns; /* CLOCK_MONOTONIC − CLOCK_REALTIME */
/* muc scenarios (one worker thread: plain variables suffice for its own) */
static atomic_uint g_muc_joined;  /* sessions in the room (muc, muclat) */
static atomic_int  g_room_ready;  /* the creator configured the room */
static atomic_int  g_muc_traffic; /* the room is full: send */
static atomic_uint g_rooms_made;  /* mucrooms: persistent rooms configured */
static atomic_uint g_muc_failed;  /* joins or configurations refused */
static gint64     *g_muc_sent_at; /* muclat: send time of message k */
static guint      *g_muc_got;     /* muclat: occupants that got message k */
static gint64     *g_muc_worst;   /* muclat: its latency to the last of them so far */
static guint       g_muc_cap;     /* muclat: the arrays' length */
static guint64     g_muc_complete;/* muclat: messages every occupant got */

static inline gint64
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (gint64) ts.tv_sec * G_GINT64_CONSTANT (1000000000) + ts.tv_nsec;
}

static double
secs_since (gint64 t)
{
  return (double) (now_ns () - t) / 1e9;
}

/* ---- a log-linear histogram of nanoseconds ---------------------------- */

#define HIST_SUB 2048u
#define HIST_BUCKETS (2 * HIST_SUB + 48u * HIST_SUB)

typedef struct
{
  guint64 *b;
  guint64  count;
  double   sum;
  guint64  max;
} Hist;

static guint
hist_index (guint64 v)
{
  if (v < 2 * HIST_SUB)
    return (guint) v;
  int e = 63 - __builtin_clzll (v) - 11; /* v >> e in [2048, 4096) */
  guint idx = 2 * HIST_SUB + (guint) (e - 1) * HIST_SUB + (guint) ((v >> e) - HIST_SUB);
  return MIN (idx, HIST_BUCKETS - 1);
}

static guint64
hist_value (guint idx)
{
  if (idx < 2 * HIST_SUB)
    return idx;
  guint e = (idx - 2 * HIST_SUB) / HIST_SUB + 1;
  guint64 m = (idx - 2 * HIST_SUB) % HIST_SUB + HIST_SUB;
  return ((m << e) + ((m + 1) << e)) / 2; /* bucket midpoint */
}

static void
hist_add (Hist *h, guint64 v)
{
  if (h->b == NULL)
    h->b = g_new0 (guint64, HIST_BUCKETS);
  h->b[hist_index (v)]++;
  h->count++;
  h->sum += (double) v;
  h->max = MAX (h->max, v);
}

static void
hist_merge (Hist *into, const Hist *from)
{
  if (from->b == NULL)
    return;
  if (into->b == NULL)
    into->b = g_new0 (guint64, HIST_BUCKETS);
  for (guint i = 0; i < HIST_BUCKETS; i++)
    into->b[i] += from->b[i];
  into->count += from->count;
  into->sum += from->sum;
  into->max = MAX (into->max, from->max);
}

static guint64
hist_quantile (const Hist *h, double q)
{
  if (h->count == 0 || h->b == NULL)
    return 0;
  guint64 rank = (guint64) (q * (double) h->count);
  if (rank >= h->count)
    rank = h->count - 1;
  guint64 seen = 0;
  for (guint i = 0; i < HIST_BUCKETS; i++)
    {
      seen += h->b[i];
      if (seen > rank)
        return MIN (hist_value (i), h->max);
    }
  return h->max;
}

/* ---- connections ------------------------------------------------------ */

typedef enum
{
  ST_IDLE_SLOT,   /* not connected */
  ST_CONNECTING,
  ST_FEATURES1,   /* waiting for the first <features> */
  ST_REGISTER,    /* waiting for the registration result */
  ST_AUTH,        /* waiting for <success> */
  ST_FEATURES2,   /* waiting for the post-auth <features> */
  ST_BIND,        /* waiting for the bind result */
  ST_READY,
  ST_CLOSING,     /* our </stream:stream> sent: draining until EOF */
} ConnState;

typedef struct Worker Worker;
typedef struct Conn Conn;

struct Conn
{
  int        fd;
  ConnState  state;
  guint      account;     /* account number */
  guint      attempts;    /* connection attempts for this slot */
  guint      slot;        /* index in the worker's array */
  int        depth;       /* element depth at the start of rbuf */
  char      *rbuf;        /* unparsed tail (a partial element) */
  size_t     rlen;
  char      *wbuf;        /* unsent output */
  size_t     wlen, woff, wcap;
  gboolean   want_out;    /* EPOLLOUT armed */
  gboolean   shut;        /* our side shut down (after </stream:stream>) */
  char      *jid;         /* full JID from bind */
  Conn      *peer;        /* throughput/latency partner */
  gint64     t_start;     /* login start */
  guint      sent;        /* latency: messages sent from this side */
  gboolean   sm_on;       /* <enabled/> received: stanzas are counted */
  guint32    sm_h;        /* stanzas handled since <enabled/> (mod 2^32) */
  guint      sm_since_ack;/* handled since our last <a/> */
  int        muc;         /* MUC_* below: where this session is in the room */
  guint      muc_done;    /* mucrooms: rooms this session created */
  guint      index;       /* muc: the session's number, 0 .. n-1 */
};

/* A session's place in the muc scenarios. */
enum { MUC_OUT, MUC_JOINING, MUC_CONFIGURING, MUC_IN, MUC_FINISHED };

struct Worker
{
  guint      id;
  pthread_t  thread;
  int        ep;
  Conn      *conns;
  guint      n_conns;
  guint      next_source;
  char      *scratch;
  size_t     scratch_cap;
  /* setup bookkeeping */
  guint      next_to_start;  /* idle/pairs/churn: next slot to connect */
  int        wave;           /* churn: the wave this worker is in */
  guint      wave_share;     /* churn: this worker's sessions in it */
  int        closed_wave;    /* churn: last wave whose sessions it closed */
  guint      in_flight;      /* logins or registrations under way */
  gboolean   started_traffic;
  guint64    paced_sent;     /* latency: messages due so far (sent or skipped) */
  guint      rr;             /* latency: round-robin position */
  gint64     rx_ns;          /* CLOCK_MONOTONIC right after the last recv() */
  gint64     rx_kernel_ns;   /* latency: the kernel's receive time of that
                              * read's last segment (SO_TIMESTAMPNS), 0 if none */
  gint64     wall0_ns, rq0_ns;  /* wall clock and run-queue wait when measuring began */
  gint64     wall1_ns, rq1_ns;  /* ... and when the worker stopped */
  gint64     work_ns;        /* latency: wall time of polling laps that did something */
  /* results */
  guint64    delivered;
  guint64    sent_msgs;
  guint64    logins;
  guint64    login_failures;
  guint64    registered;
  guint64    conflicts;
  guint64    reg_failures;
  guint64    errors;         /* error stanzas, resets during traffic */
  Hist       lat;
  Hist       late;           /* latency: send time minus its deadline */
  Hist       rxdelay;        /* latency: recv() time minus the kernel's receipt */
  Hist       klat;           /* latency: the kernel's receipt minus send time */
  Hist       muc_all;        /* muclat: every delivery's latency */
  guint64    timed_sent;     /* latency: messages sent in the timed window */
  char       last_error[160];
};

static Worker *workers;

static void conn_start (Worker *w, Conn *c);
static void conn_close (Worker *w, Conn *c);
static gboolean conn_flush (Worker *w, Conn *c);

static void
note_error (Worker *w, Conn *c, const char *what, const char *detail, size_t dlen)
{
  g_snprintf (w->last_error, sizeof w->last_error, "%s (account %u, state %d): %.*s",
              what, c->account, (int) c->state, (int) MIN (dlen, 100), detail ? detail : "");
}

/* Queues output; it is flushed after the current event is handled. */
static void
conn_write (Conn *c, const char *data, size_t len)
{
  if (c->wlen + len > c->wcap)
    {
      if (c->woff > 0)
        {
          memmove (c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
          c->wlen -= c->woff;
          c->woff = 0;
        }
      if (c->wlen + len > c->wcap)
        {
          c->wcap = MAX (c->wcap * 2, c->wlen + len + 256);
          c->wbuf = g_realloc (c->wbuf, c->wcap);
        }
    }
  memcpy (c->wbuf + c->wlen, data, len);
  c->wlen += len;
}

static void
conn_printf (Conn *c, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

static void
conn_printf (Conn *c, const char *fmt, ...)
{
  char buf[1024];
  va_list ap;
  va_start (ap, fmt);
  int n = g_vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
  if (n > 0)
    conn_write (c, buf, MIN ((size_t) n, sizeof buf - 1));
}

/* Returns FALSE when the connection broke. */
static gboolean
conn_flush (Worker *w, Conn *c)
{
  for (guint round = 0; round < 64 && c->woff < c->wlen; round++)
    {
      ssize_t n = send (c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
      if (n > 0)
        {
          c->woff += (size_t) n;
          continue;
        }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        break;
      return FALSE;
    }
  gboolean pending = c->woff < c->wlen;
  if (!pending && c->state == ST_CLOSING && !c->shut)
    {
      shutdown (c->fd, SHUT_WR); /* after </stream:stream> left */
      c->shut = TRUE;
    }
  if (!pending)
    {
      c->woff = c->wlen = 0;
      if (c->wcap > 65536)
        {
          g_free (c->wbuf);
          c->wbuf = NULL;
          c->wcap = 0;
        }
    }
  if (pending != c->want_out)
    {
      struct epoll_event ev = { .events = EPOLLIN | (pending ? EPOLLOUT : 0),
                                .data.ptr = c };
      epoll_ctl (w->ep, EPOLL_CTL_MOD, c->fd, &ev);
      c->want_out = pending;
    }
  return TRUE;
}

static void
send_stream_header (Conn *c)
{
  conn_printf (c, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
               "xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>",
               opt.domain);
}

static void
send_auth (Conn *c)
{
  char raw[512];
  int n = g_snprintf (raw, sizeof raw, "%c%s%u%c%s", 0, opt.prefix, c->account, 0, opt.password);
  g_autofree char *b64 = g_base64_encode ((const guchar *) raw, (gsize) MIN (n, (int) sizeof raw - 1));
  conn_printf (c, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>", b64);
}

static void
send_register (Conn *c)
{
  conn_printf (c, "<iq type='set' id='reg1'><query xmlns='jabber:iq:register'>"
               "<username>%s%u</username><password>%s</password></query></iq>",
               opt.prefix, c->account, opt.password);
}

/* Queues a message to FROM's peer whose body is the CLOCK_MONOTONIC time
 * it is stamped with (returned; 0 when not sent).  Callers flush right
 * away, so the stamp is the send time. */
static gint64
send_message (Conn *from)
{
  if (from->peer == NULL || from->peer->jid == NULL)
    return 0;
  gint64 t = now_ns ();
  conn_printf (from, "<message to='%s' type='chat'><body>ts:%" G_GINT64_FORMAT "</body></message>",
               from->peer->jid, t);
  return t;
}

/* ---- tiny element inspection ----------------------------------------- */

static const char *
find (const char *s, size_t len, const char *needle)
{
  return memmem (s, len, needle, strlen (needle));
}

/* Length of the element's start tag (up to and including its '>'). */
static size_t
start_tag_len (const char *s, size_t len)
{
  char q = 0;
  for (size_t i = 0; i < len; i++)
    {
      char ch = s[i];
      if (q)
        {
          if (ch == q)
            q = 0;
        }
      else if (ch == '"' || ch == '\'')
        q = ch;
      else if (ch == '>')
        return i + 1;
    }
  return len;
}

/* An attribute's raw value in a start tag; NULL when absent. */
static const char *
attr (const char *tag, size_t len, const char *name, size_t *vlen)
{
  size_t nl = strlen (name);
  for (size_t i = 1; i + nl + 2 < len; i++)
    {
      if (!g_ascii_isspace (tag[i - 1]) || memcmp (tag + i, name, nl) != 0)
        continue;
      size_t j = i + nl;
      while (j < len && g_ascii_isspace (tag[j]))
        j++;
      if (j >= len || tag[j] != '=')
        continue;
      j++;
      while (j < len && g_ascii_isspace (tag[j]))
        j++;
      if (j >= len || (tag[j] != '\'' && tag[j] != '"'))
        continue;
      char q = tag[j++];
      const char *end = memchr (tag + j, q, len - j);
      if (end == NULL)
        return NULL;
      *vlen = (size_t) (end - (tag + j));
      return tag + j;
    }
  return NULL;
}

static gboolean
attr_is (const char *tag, size_t len, const char *name, const char *value)
{
  size_t vl = 0;
  const char *v = attr (tag, len, name, &vl);
  return v != NULL && vl == strlen (value) && memcmp (v, value, vl) == 0;
}

/* Text content of the first element whose local name is NAME. */
static const char *
child_text (const char *s, size_t len, const char *name, size_t *tlen)
{
  size_t nl = strlen (name);
  for (const char *p = s; p < s + len; p++)
    {
      p = memchr (p, '<', (size_t) (s + len - p));
      if (p == NULL)
        return NULL;
      const char *n = p + 1;
      const char *e = s + len;
      const char *colon = NULL;
      const char *q = n;
      while (q < e && *q != '>' && *q != ' ' && *q != '/' && *q != '\t' && *q != '\n' && *q != '\r')
        {
          if (*q == ':')
            colon = q;
          q++;
        }
      const char *local = colon ? colon + 1 : n;
      if (*n == '/' || (size_t) (q - local) != nl || memcmp (local, name, nl) != 0)
        continue;
      const char *gt = memchr (q, '>', (size_t) (e - q));
      if (gt == NULL || gt[-1] == '/')
        return NULL;
      const char *lt = memchr (gt + 1, '<', (size_t) (e - gt - 1));
      if (lt == NULL)
        return NULL;
      *tlen = (size_t) (lt - gt - 1);
      return gt + 1;
    }
  return NULL;
}

/* ---- the client state machine ----------------------------------------- */

/* Ends a session politely: </stream:stream>, then our side of the TCP
 * connection once that has left (conn_flush); conn_closed() follows when
 * the server has closed its side too. */
static void
conn_finish (Worker *w, Conn *c)
{
  conn_write (c, "</stream:stream>", 16);
  c->state = ST_CLOSING;
  c->t_start = now_ns ();
  conn_flush (w, c);
}

/* C, closing, saw the server's end (or a reset): frees the slot (in_flight
 * drops) or, churn, counts the session as released. */
static void
conn_closed (Worker *w, Conn *c)
{
  conn_close (w, c);
  if (opt.scenario == SC_CHURN)
    atomic_fetch_add (&g_released, 1);
  else
    w->in_flight--;
}

static void
session_bound (Worker *w, Conn *c)
{
  c->state = ST_READY;
  c->sm_on = FALSE;
  c->sm_h = 0;
  c->sm_since_ack = 0;
  if (opt.sm_ack_every > 0)
    conn_write (c, "<enable xmlns='urn:xmpp:sm:3' resume='true'/>", 45);
  if (opt.presence)
    conn_write (c, "<presence/>", 11);
  if (opt.scenario == SC_LOGINS)
    {
      if (atomic_load_explicit (&g_measuring, memory_order_relaxed))
        {
          w->logins++;
          hist_add (&w->lat, (guint64) (now_ns () - c->t_start));
        }
      conn_finish (w, c);
      return;
    }
  atomic_fetch_add (&g_bound, 1);
  w->in_flight--;
}

/* Setup failed for C: retry it (bounded) or give up on it. */
static void
conn_failed (Worker *w, Conn *c)
{
  ConnState st = c->state;
  if (st == ST_CLOSING)
    {
      conn_closed (w, c); /* the session was over already */
      return;
    }
  conn_close (w, c);
  if (st == ST_READY && opt.scenario != SC_LOGINS)
    {
      w->errors++;
      if (opt.scenario == SC_CHURN)
        atomic_fetch_add (&g_dropped, 1);
      return;
    }
  w->in_flight--;
  if (opt.scenario == SC_LOGINS)
    {
      if (atomic_load_explicit (&g_measuring, memory_order_relaxed))
        w->login_failures++;
      return; /* ramp() starts the slot again */
    }
  if (opt.scenario == SC_REGISTER)
    {
      w->reg_failures++;
      return;
    }
  if (c->attempts < 3 && !atomic_load (&g_stop))
    {
      conn_start (w, c);
      return;
    }
  atomic_fetch_add (&g_failed, 1);
}

static void
registration_done (Worker *w, Conn *c, gboolean ok, gboolean conflict)
{
  if (ok)
    w->registered++;
  else if (conflict)
    w->conflicts++;
  else
    w->reg_failures++;
  conn_finish (w, c);
}

/* ---- multi-user chat ------------------------------------------------- */

/* The room session C works in: the benchmark's room, or (mucrooms) its
 * next room of its own on the service. */
static void
muc_room_of (Conn *c, char *buf, size_t len)
{
  if (opt.scenario == SC_MUCROOMS)
    g_snprintf (buf, len, "bench%u-%u@%s", c->account, c->muc_done, opt.muc_room);
  else
    g_snprintf (buf, len, "%s", opt.muc_room);
}

/* Joins the room as nick u<account>, asking for no history. */
static void
muc_join (Conn *c)
{
  char room[512];
  muc_room_of (c, room, sizeof room);
  conn_printf (c, "<presence to='%s/u%u'><x xmlns='http://jabber.org/protocol/muc'>"
               "<history maxstanzas='0'/></x></presence>", room, c->account);
  c->muc = MUC_JOINING;
}

/* The owner's configuration form (XEP-0045 §10.1.3), submitted as it is
 * apart from persistence: unlocks the room. */
static void
muc_configure (Conn *c, gboolean persistent)
{
  char room[512];
  muc_room_of (c, room, sizeof room);
  conn_printf (c, "<iq type='set' to='%s' id='cfg%u'><query xmlns='http://jabber.org/protocol/muc#owner'>"
               "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>"
               "<value>http://jabber.org/protocol/muc#roomconfig</value></field>"
               "<field var='muc#roomconfig_persistentroom'><value>%d</value></field>"
               "</x></query></iq>", room, c->muc_done, persistent ? 1 : 0);
  c->muc = MUC_CONFIGURING;
}

/* A groupchat message to the room stamped with its send time and K. */
static gint64
muc_send (Conn *c, guint64 k)
{
  gint64 t = now_ns ();
  conn_printf (c, "<message to='%s' type='groupchat'><body>ts:%" G_GINT64_FORMAT " k:%" G_GUINT64_FORMAT
               "</body></message>", opt.muc_room, t, k);
  return t;
}

/* Whether the presence S (start tag TL long) is C's own in the room
 * (status 110). */
static gboolean
muc_is_self (const char *s, size_t len)
{
  return find (s, len, "code='110'") != NULL || find (s, len, "code=\"110\"") != NULL;
}

/* A stanza for a session of the muc scenarios, bound and ready. */
static void
muc_element (Worker *w, Conn *c, const char *name, size_t nlen, const char *s, size_t len, size_t tl)
{
#define IS(lit) (nlen == sizeof (lit) - 1 && memcmp (name, lit, nlen) == 0)
  if (IS ("presence"))
    {
      if (attr_is (s, tl, "type", "error") && c->muc != MUC_IN)
        {
          note_error (w, c, "join refused", s, len);
          atomic_fetch_add (&g_muc_failed, 1);
          if (opt.scenario != SC_MUCROOMS && c->index != 0)
            w->in_flight--;
          c->muc = MUC_FINISHED;
          return;
        }
      if (c->muc != MUC_JOINING || !muc_is_self (s, len) || attr_is (s, tl, "type", "unavailable"))
        return;
      /* The creator (session 0, or each mucrooms session) configures a
       * room it created (status 201); a room there already is ready. */
      gboolean created = find (s, len, "code='201'") != NULL || find (s, len, "code=\"201\"") != NULL;
      if (created && (opt.scenario == SC_MUCROOMS || c->index == 0))
        {
          muc_configure (c, opt.scenario == SC_MUCROOMS);
          return;
        }
      if (opt.scenario == SC_MUCROOMS)
        {
          note_error (w, c, "room there already", s, len);
          atomic_fetch_add (&g_muc_failed, 1);
          c->muc = MUC_FINISHED;
          return;
        }
      if (c->index == 0)
        atomic_store (&g_room_ready, 1);
      else
        w->in_flight--;
      c->muc = MUC_IN;
      atomic_fetch_add (&g_muc_joined, 1);
      return;
    }
  if (IS ("iq"))
    {
      if (c->muc != MUC_CONFIGURING)
        return;
      if (!attr_is (s, tl, "type", "result"))
        {
          note_error (w, c, "room configuration refused", s, len);
          atomic_fetch_add (&g_muc_failed, 1);
          c->muc = MUC_FINISHED;
          return;
        }
      if (opt.scenario != SC_MUCROOMS)
        {
          atomic_store (&g_room_ready, 1);
          c->muc = MUC_IN;
          atomic_fetch_add (&g_muc_joined, 1);
          return;
        }
      /* mucrooms: made; leave it idle (persistent, empty) and go on. */
      char room[512];
      muc_room_of (c, room, sizeof room);
      conn_printf (c, "<presence type='unavailable' to='%s/u%u'/>", room, c->account);
      atomic_fetch_add (&g_rooms_made, 1);
      c->muc_done++;
      guint share = opt.muc_rooms / opt.n + (c->index < opt.muc_rooms % opt.n ? 1 : 0);
      if (c->muc_done < share)
        muc_join (c);
      else
        c->muc = MUC_FINISHED;
      return;
    }
  if (!IS ("message") || opt.scenario == SC_MUCROOMS)
    return;
  if (attr_is (s, tl, "type", "error"))
    {
      w->errors++;
      note_error (w, c, "message error", s, len);
      return;
    }
  const char *ts = find (s, len, ">ts:");
  if (ts == NULL)
    return; /* the subject, or anything else */
  gint64 sent = g_ascii_strtoll (ts + 4, NULL, 10);
  const char *kp = find (ts, len - (size_t) (ts - s), " k:");
  guint64 k = kp != NULL ? g_ascii_strtoull (kp + 3, NULL, 10) : G_MAXUINT64;
  gint64 now = w->rx_ns;
  gboolean measuring = atomic_load_explicit (&g_measuring, memory_order_relaxed);
  if (measuring)
    w->delivered++;
  if (opt.scenario == SC_MUCLAT && k < g_muc_cap && sent >= g_timed_from_ns && now >= sent)
    {
      gint64 d = now - sent;
      if (measuring)
        hist_add (&w->muc_all, (guint64) d);
      if (d > g_muc_worst[k])
        g_muc_worst[k] = d;
      if (++g_muc_got[k] == atomic_load (&g_muc_joined))
        {
          g_muc_complete++;
          if (measuring)
            hist_add (&w->lat, (guint64) g_muc_worst[k]);
        }
    }
  /* muc: a sender's own message came back: the next one keeps its window. */
  if (opt.scenario == SC_MUC && c->index < opt.pairs
      && !atomic_load_explicit (&g_stop, memory_order_relaxed))
    {
      size_t fl = 0;
      const char *from = attr (s, tl, "from", &fl);
      char nick[32];
      int nl = g_snprintf (nick, sizeof nick, "/u%u", c->account);
      if (from != NULL && fl >= (size_t) nl && memcmp (from + fl - nl, nick, (size_t) nl) == 0)
        {
          muc_send (c, 0);
          w->sent_msgs++;
        }
    }
#undef IS
}

/* The muc scenarios' setup and traffic, from the worker's loop: once all
 * sessions are bound, session 0 creates and configures the room, then the
 * others join, opt.concurrency at a time; once they all are in, the
 * senders start (muc: a window each; muclat: paced by muc_pace). */
static void
muc_drive (Worker *w)
{
  if (!atomic_load (&g_go) || atomic_load (&g_stop))
    return;
  if (opt.scenario == SC_MUCROOMS)
    {
      for (guint i = 0; i < w->n_conns; i++)
        if (w->conns[i].state == ST_READY && w->conns[i].muc == MUC_OUT)
          {
            muc_join (&w->conns[i]);
            conn_flush (w, &w->conns[i]);
          }
      return;
    }
  Conn *creator = &w->conns[0];
  if (creator->muc == MUC_OUT && creator->state == ST_READY)
    {
      muc_join (creator);
      conn_flush (w, creator);
      return;
    }
  if (!atomic_load (&g_room_ready))
    return;
  for (guint i = 1; i < w->n_conns && w->in_flight < opt.concurrency; i++)
    {
      Conn *c = &w->conns[i];
      if (c->state != ST_READY || c->muc != MUC_OUT)
        continue;
      muc_join (c);
      w->in_flight++;
      conn_flush (w, c);
    }
  if (opt.scenario == SC_MUC && atomic_load (&g_muc_traffic) && !w->started_traffic)
    {
      w->started_traffic = TRUE;
      for (guint i = 0; i < MIN (opt.pairs, w->n_conns); i++)
        {
          Conn *c = &w->conns[i];
          if (c->muc != MUC_IN)
            continue;
          for (guint k = 0; k < opt.window; k++)
            {
              muc_send (c, 0);
              w->sent_msgs++;
            }
          conn_flush (w, c);
        }
    }
  if (opt.scenario == SC_MUCLAT && atomic_load (&g_muc_traffic) && !w->started_traffic)
    w->started_traffic = TRUE;
}

/* muclat: sends every message whose deadline has passed, from the
 * senders in turn, each stamped just before its send(). */
static void
muc_pace (Worker *w)
{
  if (!w->started_traffic || atomic_load_explicit (&g_stop, memory_order_relaxed))
    return;
  guint senders = MAX (1u, MIN (opt.pairs, w->n_conns));
  for (guint n = 0; n < 100000; n++)
    {
      guint64 k = w->paced_sent;
      gint64 due = g_pace_start_ns + (gint64) ((double) k * 1e9 / opt.rate);
      if (now_ns () < due || k >= g_muc_cap)
        return;
      w->paced_sent++;
      Conn *c = &w->conns[k % senders];
      if (c->muc != MUC_IN)
        continue;
      gint64 t = muc_send (c, k);
      g_muc_sent_at[k] = t;
      w->sent_msgs++;
      if (t >= g_timed_from_ns)
        {
          w->timed_sent++;
          hist_add (&w->late, (guint64) (t - due));
        }
      if (!conn_flush (w, c))
        conn_failed (w, c);
    }
}

/* ---- personal eventing (pepsub, pep, peplat) ------------------------- */

/* Session 0 (account FIRST) publishes; sessions 1..N are its contacts.
 * pepsub makes the mutual presence subscriptions in-band, once per
 * server (contact: subscribe → publisher: subscribed + subscribe →
 * contact: subscribed).  pep and peplat: the publisher and then the
 * contacts send available presence with an XEP-0115 hash whose features
 * include NODE+notify for the contacts (not for the publisher), answer
 * the server's disco#info at node#ver, and the publisher publishes
 * warm-up items until every contact got one; then items stamped with
 * their send time, their number k and the run's nonce (items of earlier
 * runs, delivered as a node's last item, are counted apart as stale). */

#define PEP_CAPS_NODE "https://myna.example/xmppload"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
/* pepsub: roster pushes go to resources that asked for the roster (RFC 6121 §2.1.6) */
#define PEP_ROSTER_GET "<iq type='get' id='roster1'><query xmlns='jabber:iq:roster'/></iq>"

/* Flags of a session in the pep scenarios (Conn.muc). */
enum { PEP_GOT_SUBSCRIBED = 1, PEP_SENT_SUBSCRIBED = 2, PEP_SUB_DONE = 4, PEP_STARTED = 8,
       PEP_WARM = 16, PEP_SUB_DONE_AT_PUB = 32 };

static gboolean    g_trace;       /* XMPPLOAD_TRACE: the first sessions' stanzas to stderr */
static atomic_int  g_pep_phase;   /* 0 login, 1 presence (+subscriptions), 2 warm-up,
                                   * 3 traffic, 4 drain */
static atomic_uint g_pep_subs_p;  /* pepsub: contacts the publisher's roster has as 'both' */
static atomic_uint g_pep_subs_c;  /* pepsub: contacts whose handshake is done */
static atomic_uint g_pep_warm;    /* contacts that got a warm-up item */
static atomic_uint g_pep_disco;   /* disco#info queries answered */
static atomic_int  g_pep_drained; /* drain: every acked item reached every contact */
static atomic_uint g_pep_failed;  /* warm-up publishes refused */
static char        g_pep_run[24]; /* this run's nonce */
static char       *g_pep_pub;     /* the publisher's bare JID */
static char       *g_pep_ver_c, *g_pep_ver_p; /* caps ver: contacts', publisher's */
static char       *g_pep_pad;     /* payload padding */
/* the worker's own (one thread) */
static gint64     *g_pep_sent_at; /* item k: send time */
static guint      *g_pep_got;     /* item k: contacts that got it (first time) */
static gint64     *g_pep_worst;   /* item k: latency to the last of them so far */
static guint64     g_pep_cap;     /* the arrays' length */
static gint64     *g_pep_last;    /* per session: last k received, -1 none */
static guint64     g_pep_sent;    /* items published (k = 0 .. sent-1) */
static guint64     g_pep_acked;   /* IQ results */
static guint64     g_pep_perr;    /* IQ errors */
static guint64     g_pep_acked_m; /* IQ results while measuring */
static guint64     g_pep_firsts;  /* first receipts of an item by a contact */
static guint64     g_pep_firsts_m;/* ... while measuring */
static guint64     g_pep_complete;/* items every contact got */
static guint64     g_pep_dups;    /* receipts of an item again (or out of order) */
static guint64     g_pep_gaps;    /* items skipped when a later one came */
static guint64     g_pep_stale;   /* items of other runs */
static guint       g_pep_warm_sent;
static gint64      g_pep_warm_at; /* the last warm-up item sent, or progress seen */
static guint       g_pep_warm_seen;

/* The XEP-0115 ver of identity client/pc "xmppload" with FEATURES (sorted). */
static char *
pep_caps_ver (const char *const *features)
{
  g_autoptr(GString) s = g_string_new ("client/pc//xmppload<");
  for (guint i = 0; features[i] != NULL; i++)
    g_string_append_printf (s, "%s<", features[i]);
  guint8 digest[20];
  gsize dl = sizeof digest;
  g_autoptr(GChecksum) ck = g_checksum_new (G_CHECKSUM_SHA1);
  g_checksum_update (ck, (const guchar *) s->str, (gssize) s->len);
  g_checksum_get_digest (ck, digest, &dl);
  return g_base64_encode (digest, dl);
}

/* The features of the contacts (with NODE+notify) or the publisher,
 * unsorted. */
static char **
pep_features (gboolean contact)
{
  GPtrArray *a = g_ptr_array_new ();
  g_ptr_array_add (a, g_strdup ("http://jabber.org/protocol/caps"));
  g_ptr_array_add (a, g_strdup (NS_DISCO_INFO));
  g_ptr_array_add (a, g_strdup (opt.pep_node));
  if (contact)
    g_ptr_array_add (a, g_strconcat (opt.pep_node, "+notify", NULL));
  g_ptr_array_add (a, NULL);
  return (char **) g_ptr_array_free (a, FALSE);
}

/* Sorts a NULL-terminated string vector in place (byte order). */
static int
pep_strv_cmp (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static void
pep_init (void)
{
  g_snprintf (g_pep_run, sizeof g_pep_run, "%08x%04x", g_random_int (), (guint) getpid () & 0xffff);
  g_pep_pub = g_strdup_printf ("%s%u@%s", opt.prefix, opt.first, opt.domain);
  for (int contact = 0; contact < 2; contact++)
    {
      g_auto(GStrv) f = pep_features (contact);
      qsort (f, g_strv_length (f), sizeof (char *), pep_strv_cmp);
      char *ver = pep_caps_ver ((const char *const *) f);
      if (contact)
        g_pep_ver_c = ver;
      else
        g_pep_ver_p = ver;
    }
  g_pep_pad = g_malloc (opt.pep_pad + 1);
  memset (g_pep_pad, 'x', opt.pep_pad);
  g_pep_pad[opt.pep_pad] = '\0';
  g_pep_last = g_new (gint64, opt.n + 1);
  for (guint i = 0; i <= opt.n; i++)
    g_pep_last[i] = -1;
}

/* Makes room for item K in the per-item arrays. */
static void
pep_reserve (guint64 k)
{
  if (k < g_pep_cap)
    return;
  guint64 cap = MAX (k + 1, MAX (g_pep_cap * 2, 4096));
  g_pep_sent_at = g_renew (gint64, g_pep_sent_at, cap);
  g_pep_got = g_renew (guint, g_pep_got, cap);
  g_pep_worst = g_renew (gint64, g_pep_worst, cap);
  memset (g_pep_sent_at + g_pep_cap, 0, (cap - g_pep_cap) * sizeof (gint64));
  memset (g_pep_got + g_pep_cap, 0, (cap - g_pep_cap) * sizeof (guint));
  memset (g_pep_worst + g_pep_cap, 0, (cap - g_pep_cap) * sizeof (gint64));
  g_pep_cap = cap;
}

/* Available presence with the caps of the publisher (index 0) or a contact. */
static void
pep_presence (Conn *c)
{
  conn_printf (c, "<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='%s' ver='%s'/>"
               "</presence>", PEP_CAPS_NODE, c->index == 0 ? g_pep_ver_p : g_pep_ver_c);
}

/* Publishes one item: a warm-up (K < 0) or item K stamped with its send
 * time; returns the stamp. */
static gint64
pep_publish (Conn *c, gint64 k)
{
  gint64 t = now_ns ();
  g_autofree char *s = NULL;
  if (k < 0)
    s = g_strdup_printf ("<iq type='set' id='w%u'><pubsub xmlns='http://jabber.org/protocol/pubsub'>"
                         "<publish node='%s'><item id='w%u'><tune xmlns='http://jabber.org/protocol/tune'>"
                         "<title>warm r:%s</title><artist>%s</artist></tune></item></publish></pubsub></iq>",
                         g_pep_warm_sent, opt.pep_node, g_pep_warm_sent, g_pep_run, g_pep_pad);
  else
    s = g_strdup_printf ("<iq type='set' id='p%" G_GINT64_FORMAT "'><pubsub xmlns='http://jabber.org/protocol/pubsub'>"
                         "<publish node='%s'><item id='i%" G_GINT64_FORMAT "'><tune xmlns='http://jabber.org/protocol/tune'>"
                         "<title>ts:%" G_GINT64_FORMAT " k:%" G_GINT64_FORMAT " r:%s</title><artist>%s</artist></tune>"
                         "</item></publish></pubsub></iq>",
                         k, opt.pep_node, k, t, k, g_pep_run, g_pep_pad);
  conn_write (c, s, strlen (s));
  if (k >= 0)
    {
      pep_reserve ((guint64) k);
      g_pep_sent_at[k] = t;
      g_pep_sent = MAX (g_pep_sent, (guint64) k + 1);
    }
  return t;
}

/* Answers a server's disco#info get (at node#ver) with C's features. */
static void
pep_disco_answer (Conn *c, const char *s, size_t len, size_t tl)
{
  size_t il = 0, fl = 0, nl = 0;
  const char *id = attr (s, tl, "id", &il);
  const char *from = attr (s, tl, "from", &fl);
  const char *q = find (s, len, "<query");
  const char *node = NULL;
  if (q != NULL)
    node = attr (q, start_tag_len (q, len - (size_t) (q - s)), "node", &nl);
  g_auto(GStrv) f = pep_features (c->index != 0);
  qsort (f, g_strv_length (f), sizeof (char *), pep_strv_cmp);
  g_autoptr(GString) r = g_string_new (NULL);
  g_string_append_printf (r, "<iq type='result' id='%.*s'", (int) MIN (il, 200), id ? id : "");
  if (from != NULL)
    g_string_append_printf (r, " to='%.*s'", (int) MIN (fl, 500), from);
  g_string_append_printf (r, "><query xmlns='%s'", NS_DISCO_INFO);
  if (node != NULL)
    g_string_append_printf (r, " node='%.*s'", (int) MIN (nl, 500), node);
  g_string_append (r, "><identity category='client' type='pc' name='xmppload'/>");
  for (guint i = 0; f[i] != NULL; i++)
    g_string_append_printf (r, "<feature var='%s'/>", f[i]);
  g_string_append (r, "</query></iq>");
  conn_write (c, r->str, r->len);
  atomic_fetch_add (&g_pep_disco, 1);
}

/* Whether the attribute FROM (FL long) is the publisher's JID, bare or full. */
static gboolean
pep_from_publisher (const char *from, size_t fl)
{
  size_t bl = strlen (g_pep_pub);
  return from != NULL && fl >= bl && g_ascii_strncasecmp (from, g_pep_pub, bl) == 0
         && (fl == bl || from[bl] == '/');
}

/* A contact's handshake is over on its side: counted once. */
static void
pep_sub_check (Worker *w, Conn *c)
{
  if ((c->muc & (PEP_GOT_SUBSCRIBED | PEP_SENT_SUBSCRIBED)) != (PEP_GOT_SUBSCRIBED | PEP_SENT_SUBSCRIBED)
      || (c->muc & PEP_SUB_DONE))
    return;
  c->muc |= PEP_SUB_DONE;
  atomic_fetch_add (&g_pep_subs_c, 1);
  w->in_flight--;
}

/* pepsub: a roster push.  The handshake is over for a contact when its
 * roster says 'both' for the publisher, and for the publisher when its
 * says 'both' for that contact (counted once each).  Roster pushes, not
 * the 'subscribed' presence: Prosody does not pass that on to the client. */
static void
pep_roster_push (Worker *w, Conn *c, const char *s, size_t len)
{
  const char *item = find (s, len, "<item");
  if (item == NULL)
    return;
  size_t itl = start_tag_len (item, len - (size_t) (item - s));
  size_t jl = 0;
  const char *jid = attr (item, itl, "jid", &jl);
  if (jid == NULL || !attr_is (item, itl, "subscription", "both"))
    return;
  if (c->index != 0)
    {
      if (pep_from_publisher (jid, jl))
        {
          c->muc |= PEP_GOT_SUBSCRIBED;
          pep_sub_check (w, c);
        }
      return;
    }
  size_t pl = strlen (opt.prefix);
  if (jl <= pl || g_ascii_strncasecmp (jid, opt.prefix, pl) != 0)
    return;
  guint64 a = g_ascii_strtoull (jid + pl, NULL, 10);
  if (a <= opt.first || a > (guint64) opt.first + opt.n)
    return;
  Conn *contact = &w->conns[a - opt.first]; /* session index = account - first */
  if (!(contact->muc & PEP_SUB_DONE_AT_PUB))
    {
      contact->muc |= PEP_SUB_DONE_AT_PUB;
      atomic_fetch_add (&g_pep_subs_p, 1);
    }
}

/* A stanza for a session of the pep scenarios, bound and ready. */
static void
pep_element (Worker *w, Conn *c, const char *name, size_t nlen, const char *s, size_t len, size_t tl)
{
#define IS(lit) (nlen == sizeof (lit) - 1 && memcmp (name, lit, nlen) == 0)
  size_t fl = 0;
  const char *from = attr (s, tl, "from", &fl);
  if (IS ("presence"))
    {
      if (opt.scenario != SC_PEPSUB)
        return;
      if (c->index == 0)
        {
          /* the publisher: approve and ask back; count the approvals */
          if (attr_is (s, tl, "type", "subscribe") && from != NULL)
            conn_printf (c, "<presence type='subscribed' to='%.*s'/><presence type='subscribe' to='%.*s'/>",
                         (int) MIN (fl, 300), from, (int) MIN (fl, 300), from);
          return;
        }
      if (!pep_from_publisher (from, fl))
        return;
      if (attr_is (s, tl, "type", "subscribe"))
        {
          conn_printf (c, "<presence type='subscribed' to='%s'/>", g_pep_pub);
          c->muc |= PEP_SENT_SUBSCRIBED;
        }
      pep_sub_check (w, c);
      return;
    }
  if (IS ("iq"))
    {
      gboolean get = attr_is (s, tl, "type", "get"), set = attr_is (s, tl, "type", "set");
      if (get && find (s, len, NS_DISCO_INFO) != NULL)
        {
          pep_disco_answer (c, s, len, tl);
          return;
        }
      if (set && opt.scenario == SC_PEPSUB && find (s, len, "jabber:iq:roster") != NULL)
        pep_roster_push (w, c, s, len);
      if (get || set)
        {
          size_t il = 0;
          const char *id = attr (s, tl, "id", &il);
          if (from != NULL)
            conn_printf (c, "<iq type='result' id='%.*s' to='%.*s'/>", (int) MIN (il, 200), id ? id : "",
                         (int) MIN (fl, 500), from);
          else
            conn_printf (c, "<iq type='result' id='%.*s'/>", (int) MIN (il, 200), id ? id : "");
          return;
        }
      if (c->index != 0)
        return;
      size_t il = 0;
      const char *id = attr (s, tl, "id", &il);
      if (id == NULL || il < 2 || (id[0] != 'p' && id[0] != 'w'))
        return;
      gboolean ok = attr_is (s, tl, "type", "result");
      if (id[0] == 'w')
        {
          if (!ok)
            {
              note_error (w, c, "warm-up publish refused", s, len);
              atomic_fetch_add (&g_pep_failed, 1);
            }
          return;
        }
      if (ok)
        {
          g_pep_acked++;
          if (atomic_load_explicit (&g_measuring, memory_order_relaxed))
            g_pep_acked_m++;
        }
      else
        {
          g_pep_perr++;
          w->errors++;
          note_error (w, c, "publish refused", s, len);
        }
      w->in_flight--;
      /* pep: the window's next item */
      if (opt.scenario == SC_PEP && atomic_load (&g_pep_phase) == 3)
        {
          pep_publish (c, (gint64) g_pep_sent);
          w->in_flight++;
          w->sent_msgs++;
        }
      return;
    }
  if (!IS ("message"))
    return;
  if (attr_is (s, tl, "type", "error"))
    {
      w->errors++;
      note_error (w, c, "message error", s, len);
      return;
    }
  if (c->index == 0 || find (s, len, "pubsub#event") == NULL)
    return;
  char nonce[32];
  g_snprintf (nonce, sizeof nonce, "r:%s<", g_pep_run);
  if (find (s, len, nonce) == NULL)
    {
      g_pep_stale++;
      return;
    }
  const char *ts = find (s, len, ">ts:");
  if (ts == NULL)
    {
      if (find (s, len, ">warm r:") != NULL && !(c->muc & PEP_WARM))
        {
          c->muc |= PEP_WARM;
          atomic_fetch_add (&g_pep_warm, 1);
        }
      return;
    }
  gint64 sent = g_ascii_strtoll (ts + 4, NULL, 10);
  const char *kp = find (ts, len - (size_t) (ts - s), " k:");
  if (kp == NULL)
    return;
  gint64 k = g_ascii_strtoll (kp + 3, NULL, 10);
  if (k < 0 || (guint64) k >= g_pep_sent)
    return;
  gint64 now = w->rx_ns;
  gboolean measuring = atomic_load_explicit (&g_measuring, memory_order_relaxed);
  if (measuring)
    w->delivered++;
  gint64 *last = &g_pep_last[c->index];
  if (k <= *last)
    {
      g_pep_dups++;
      return;
    }
  if (k > *last + 1)
    g_pep_gaps += (guint64) (k - *last - 1);
  *last = k;
  g_pep_firsts++;
  if (measuring)
    g_pep_firsts_m++;
  gint64 d = now - sent;
  if (measuring && sent >= g_timed_from_ns)
    hist_add (&w->muc_all, (guint64) MAX (d, 0));
  if (d > g_pep_worst[k])
    g_pep_worst[k] = d;
  if (++g_pep_got[k] == opt.n)
    {
      g_pep_complete++;
      if (measuring && sent >= g_timed_from_ns)
        hist_add (&w->lat, (guint64) g_pep_worst[k]);
    }
#undef IS
}

/* The pep scenarios' setup and traffic, from the worker's loop. */
static void
pep_drive (Worker *w)
{
  if (!atomic_load (&g_go) || atomic_load (&g_stop))
    return;
  Conn *pub = &w->conns[0];
  int phase = atomic_load (&g_pep_phase);
  if (!(pub->muc & PEP_STARTED) && pub->state == ST_READY)
    {
      pub->muc |= PEP_STARTED;
      if (opt.scenario == SC_PEPSUB)
        conn_printf (pub, "%s<presence/>", PEP_ROSTER_GET);
      else
        pep_presence (pub);
      conn_flush (w, pub);
    }
  if (phase < 1)
    return;
  /* contacts: presence (and pepsub: the subscription), C at a time */
  for (guint i = 1; i < w->n_conns && (opt.scenario != SC_PEPSUB || w->in_flight < opt.concurrency); i++)
    {
      Conn *c = &w->conns[i];
      if (c->state != ST_READY || (c->muc & PEP_STARTED))
        continue;
      c->muc |= PEP_STARTED;
      if (opt.scenario == SC_PEPSUB)
        {
          conn_printf (c, "%s<presence/><presence type='subscribe' to='%s'/>", PEP_ROSTER_GET, g_pep_pub);
          w->in_flight++;
        }
      else
        pep_presence (c);
      conn_flush (w, c);
    }
  if (opt.scenario == SC_PEPSUB)
    return;
  guint warm = atomic_load (&g_pep_warm);
  if (warm != g_pep_warm_seen)
    {
      g_pep_warm_seen = warm;
      g_pep_warm_at = now_ns (); /* progress: the items out are still arriving */
    }
  if (phase == 2 && warm < opt.n && (g_pep_warm_sent == 0 || now_ns () - g_pep_warm_at > 1000 * 1000000LL))
    {
      /* warm-up: another item once a second has passed without a contact
       * getting one (a server still asking for caps, or slow to deliver,
       * is not buried under warm-up items) */
      pep_publish (pub, -1);
      g_pep_warm_sent++;
      g_pep_warm_at = now_ns ();
      conn_flush (w, pub);
    }
  if (phase == 3 && opt.scenario == SC_PEP && !w->started_traffic)
    {
      w->started_traffic = TRUE;
      w->in_flight = 0;
      for (guint k = 0; k < opt.window; k++)
        {
          pep_publish (pub, (gint64) g_pep_sent);
          w->in_flight++;
          w->sent_msgs++;
        }
      conn_flush (w, pub);
    }
  if (phase == 3 && opt.scenario == SC_PEPLAT && !w->started_traffic)
    {
      w->started_traffic = TRUE;
      w->in_flight = 0;
    }
  if (phase == 4 && !atomic_load (&g_pep_drained) && w->in_flight == 0
      && g_pep_firsts >= (guint64) opt.n * g_pep_acked)
    atomic_store (&g_pep_drained, 1);
}

/* peplat: publishes every item whose deadline has passed, each stamped
 * just before its send(). */
static void
pep_pace (Worker *w)
{
  if (!w->started_traffic || atomic_load (&g_pep_phase) != 3)
    return;
  Conn *pub = &w->conns[0];
  for (guint n = 0; n < 100000; n++)
    {
      guint64 k = w->paced_sent;
      gint64 due = g_pace_start_ns + (gint64) ((double) k * 1e9 / opt.rate);
      if (now_ns () < due)
        return;
      w->paced_sent++;
      gint64 t = pep_publish (pub, (gint64) k);
      w->in_flight++;
      w->sent_msgs++;
      if (t >= g_timed_from_ns)
        {
          w->timed_sent++;
          hist_add (&w->late, (guint64) (t - due));
        }
      if (!conn_flush (w, pub))
        conn_failed (w, pub);
    }
}

/* One complete top-level element S[0..LEN) with local name NAME. */
static gboolean
handle_element (Worker *w, Conn *c, const char *name, size_t nlen, const char *s, size_t len)
{
#define IS(lit) (nlen == sizeof (lit) - 1 && memcmp (name, lit, nlen) == 0)
  size_t tl = start_tag_len (s, len);

  switch (c->state)
    {
    case ST_FEATURES1:
      if (!IS ("features"))
        break;
      if (opt.scenario == SC_REGISTER)
        {
          send_register (c);
          c->state = ST_REGISTER;
        }
      else
        {
          send_auth (c);
          c->state = ST_AUTH;
        }
      break;

    case ST_REGISTER:
      if (IS ("iq"))
        {
          gboolean ok = attr_is (s, tl, "type", "result");
          gboolean conflict = !ok && find (s, len, "conflict") != NULL;
          if (!ok && !conflict)
            note_error (w, c, "registration refused", s, len);
          registration_done (w, c, ok, conflict);
          return TRUE;
        }
      if (IS ("error"))
        {
          note_error (w, c, "stream error", s, len);
          return FALSE;
        }
      break;

    case ST_AUTH:
      if (IS ("success"))
        {
          send_stream_header (c);
          c->state = ST_FEATURES2;
          c->depth = 0; /* the server opens a new stream */
          return TRUE;
        }
      if (IS ("failure") || IS ("error"))
        {
          note_error (w, c, "authentication failed", s, len);
          return FALSE;
        }
      break;

    case ST_FEATURES2:
      if (IS ("features"))
        {
          conn_write (c, "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>", 79);
          c->state = ST_BIND;
        }
      break;

    case ST_BIND:
      if (IS ("iq") && attr_is (s, tl, "id", "bind1"))
        {
          size_t jl = 0;
          const char *j = child_text (s, len, "jid", &jl);
          if (!attr_is (s, tl, "type", "result") || j == NULL || jl == 0)
            {
              note_error (w, c, "bind failed", s, len);
              return FALSE;
            }
          g_free (c->jid);
          c->jid = g_strndup (j, jl);
          session_bound (w, c);
          return TRUE;
        }
      if (IS ("error"))
        {
          note_error (w, c, "stream error", s, len);
          return FALSE;
        }
      break;

    case ST_READY:
      /* Stream management: count what arrives, answer <r/>, and ack
       * every sm_ack_every stanzas unasked. */
      if (c->sm_on && (IS ("message") || IS ("iq") || IS ("presence")))
        {
          c->sm_h++;
          if (++c->sm_since_ack >= opt.sm_ack_every)
            {
              conn_printf (c, "<a xmlns='urn:xmpp:sm:3' h='%u'/>", c->sm_h);
              c->sm_since_ack = 0;
            }
        }
      if (IS_MUC (opt.scenario) && (IS ("presence") || IS ("iq") || IS ("message")))
        {
          muc_element (w, c, name, nlen, s, len, tl);
          break;
        }
      if (IS_PEP (opt.scenario) && (IS ("presence") || IS ("iq") || IS ("message")))
        {
          if (g_trace && c->index < 3)
            fprintf (stderr, "xmppload: trace %u: %.*s\n", c->index, (int) MIN (len, 600), s);
          pep_element (w, c, name, nlen, s, len, tl);
          break;
        }
      if (IS ("enabled"))
        c->sm_on = TRUE;
      else if (IS ("r"))
        {
          conn_printf (c, "<a xmlns='urn:xmpp:sm:3' h='%u'/>", c->sm_h);
          c->sm_since_ack = 0;
        }
      else if (IS ("a"))
        ;
      else if (IS ("failed"))
        {
          note_error (w, c, "stream management refused", s, len);
          w->errors++;
        }
      else if (IS ("message"))
        {
          if (attr_is (s, tl, "type", "error"))
            {
              w->errors++;
              note_error (w, c, "message error", s, len);
              break;
            }
          const char *ts = find (s, len, ">ts:");
          if (ts == NULL)
            break;
          gint64 sent = g_ascii_strtoll (ts + 4, NULL, 10);
          gint64 now = w->rx_ns; /* when recv() handed the bytes over */
          if (atomic_load_explicit (&g_measuring, memory_order_relaxed))
            {
              w->delivered++;
              /* Latency warm-up: messages sent before measuring began
               * are counted as delivered but not timed. */
              if (opt.scenario == SC_LATENCY && sent >= g_timed_from_ns && now >= sent)
                {
                  hist_add (&w->lat, (guint64) (now - sent));
                  gint64 k = w->rx_kernel_ns;
                  if (k != 0 && k <= now && k >= sent)
                    {
                      hist_add (&w->rxdelay, (guint64) (now - k));
                      hist_add (&w->klat, (guint64) (k - sent));
                    }
                }
            }
          if (opt.scenario == SC_THROUGHPUT && !atomic_load_explicit (&g_stop, memory_order_relaxed))
            {
              send_message (c); /* keep the pair's window full */
              w->sent_msgs++;
            }
        }
      else if (IS ("iq"))
        {
          /* Answer server-initiated gets/sets (e.g. XEP-0199 pings). */
          if (attr_is (s, tl, "type", "get") || attr_is (s, tl, "type", "set"))
            {
              size_t il = 0, fl = 0;
              const char *id = attr (s, tl, "id", &il);
              const char *from = attr (s, tl, "from", &fl);
              if (from != NULL)
                conn_printf (c, "<iq type='result' id='%.*s' to='%.*s'/>",
                             (int) MIN (il, 200), id ? id : "", (int) MIN (fl, 500), from);
              else
                conn_printf (c, "<iq type='result' id='%.*s'/>", (int) MIN (il, 200), id ? id : "");
            }
        }
      else if (IS ("error"))
        {
          note_error (w, c, "stream error", s, len);
          w->errors++;
          return FALSE;
        }
      break;

    default:
      break;
    }
  return TRUE;
#undef IS
}

/* The local name of the element whose name starts at @name (at most @max
 * bytes), without a prefix; its length in *@len. */
static const char *
element_local_name (const char *name, size_t max, size_t *len)
{
  const char *colon = NULL;
  size_t n = 0;

  while (n < max && !strchr (" \t\r\n/>", name[n]))
    {
      if (name[n] == ':')
        colon = name + n;
      n++;
    }
  const char *local = colon != NULL ? colon + 1 : name;
  *len = (size_t) (name + n - local);
  return local;
}

/* Splits BUF into top-level elements; returns bytes consumed, or -1 when
 * the connection must close. */
static ssize_t
scan_elements (Worker *w, Conn *c, const char *buf, size_t len)
{
  size_t consumed = 0;
  size_t p = 0;
  size_t elem_start = 0;
  int depth = c->depth;
  int cdepth = depth; /* depth at CONSUMED */

  for (guint guard = 0; guard < 1000000 && p < len; guard++)
    {
      const char *lt = memchr (buf + p, '<', len - p);
      if (lt == NULL)
        {
          if (depth <= 1)
            {
              consumed = len; /* whitespace keepalives */
              cdepth = depth;
            }
          break;
        }
      size_t i = (size_t) (lt - buf);
      if (depth <= 1)
        {
          consumed = i;
          cdepth = depth;
        }
      if (i + 1 >= len)
        break;
      char k = buf[i + 1];
      size_t gt;
      if (k == '!' || k == '?')
        {
          const char *endmark = k == '?' ? "?>" : (len - i >= 4 && memcmp (buf + i, "<!--", 4) == 0) ? "-->"
                                : (len - i >= 9 && memcmp (buf + i, "<![CDATA[", 9) == 0) ? "]]>" : ">";
          const char *e = memmem (buf + i + 2, len - i - 2, endmark, strlen (endmark));
          if (e == NULL)
            break;
          p = (size_t) (e - buf) + strlen (endmark);
          if (depth <= 1)
            {
              consumed = p;
              cdepth = depth;
            }
          continue;
        }
      /* find the tag's end, honouring quotes */
      char q = 0;
      gt = 0;
      for (size_t j = i + 1; j < len; j++)
        {
          char ch = buf[j];
          if (q)
            {
              if (ch == q)
                q = 0;
            }
          else if (ch == '"' || ch == '\'')
            q = ch;
          else if (ch == '>')
            {
              gt = j;
              break;
            }
        }
      if (gt == 0)
        break;
      p = gt + 1;
      if (k == '/')
        {
          depth--;
          if (depth == 1)
            {
              size_t local_len;
              const char *local = element_local_name (buf + elem_start + 1, len - elem_start - 1,
                                                      &local_len);
              c->depth = depth;
              if (!handle_element (w, c, local, local_len, buf + elem_start, p - elem_start))
                return -1;
              depth = c->depth;
              consumed = p;
              cdepth = depth;
            }
          else if (depth <= 0)
            {
              if (c->state == ST_CLOSING)
                return (ssize_t) len;
              note_error (w, c, "stream closed by server", buf + i, len - i);
              return -1;
            }
          continue;
        }
      gboolean self_closing = buf[gt - 1] == '/';
      if (depth == 0)
        {
          depth = 1; /* stream header */
          consumed = p;
          cdepth = depth;
          continue;
        }
      if (depth == 1)
        {
          elem_start = i;
          if (self_closing)
            {
              size_t local_len;
              const char *local = element_local_name (buf + i + 1, gt - i - 1, &local_len);
              c->depth = depth;
              if (!handle_element (w, c, local, local_len, buf + i, p - i))
                return -1;
              depth = c->depth;
              consumed = p;
              cdepth = depth;
              continue;
            }
        }
      if (!self_closing)
        depth++;
    }
  c->depth = cdepth; /* the unconsumed tail is scanned again from here */
  return (ssize_t) consumed;
}

/* recv() that also takes the kernel's receive timestamp of the data
 * (SO_TIMESTAMPNS, CLOCK_REALTIME, of the last segment read), as
 * CLOCK_MONOTONIC, into w->rx_kernel_ns: recv time minus it is how long
 * the data waited for this process. */
static ssize_t
recv_stamped (Worker *w, int fd, char *buf, size_t len)
{
  union
  {
    char           buf[CMSG_SPACE (sizeof (struct timespec))];
    struct cmsghdr align;
  } ctl;
  struct iovec iov = { buf, len };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                        .msg_controllen = sizeof ctl.buf };
  ssize_t n = recvmsg (fd, &msg, 0);
  w->rx_kernel_ns = 0;
  if (n <= 0)
    return n;
  for (struct cmsghdr *cm = CMSG_FIRSTHDR (&msg); cm != NULL; cm = CMSG_NXTHDR (&msg, cm))
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS
        && cm->cmsg_len >= CMSG_LEN (sizeof (struct timespec)))
      {
        struct timespec ts;
        memcpy (&ts, CMSG_DATA (cm), sizeof ts);
        if (ts.tv_sec != 0)
          w->rx_kernel_ns = (gint64) ts.tv_sec * G_GINT64_CONSTANT (1000000000) + ts.tv_nsec
                            + g_real_to_mono_ns;
      }
  return n;
}

static void
conn_readable (Worker *w, Conn *c)
{
  for (guint round = 0; round < 16 && c->fd >= 0; round++)
    {
      size_t need = c->rlen + 65536;
      if (w->scratch_cap < need)
        {
          w->scratch_cap = need;
          w->scratch = g_realloc (w->scratch, need);
        }
      if (c->rlen > 0)
        memcpy (w->scratch, c->rbuf, c->rlen);
      ssize_t n;
      if (opt.scenario == SC_LATENCY)
        n = recv_stamped (w, c->fd, w->scratch + c->rlen, 65536);
      else
        n = recv (c->fd, w->scratch + c->rlen, 65536, 0);
      w->rx_ns = now_ns ();
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
      if (c->state == ST_CLOSING)
        {
          if (n <= 0)
            {
              conn_closed (w, c);
              return;
            }
          continue; /* discard the server's goodbye */
        }
      if (n <= 0)
        {
          note_error (w, c, n == 0 ? "EOF from server" : "recv failed", g_strerror (errno), 40);
          conn_failed (w, c);
          return;
        }
      size_t total = c->rlen + (size_t) n;
      ssize_t used = scan_elements (w, c, w->scratch, total);
      if (used < 0)
        {
          if (c->fd >= 0)
            conn_failed (w, c);
          return;
        }
      if (c->fd < 0) /* closed by the state machine (logins/register) */
        return;
      size_t rest = total - (size_t) used;
      if (rest > 16 * 1024 * 1024)
        {
          note_error (w, c, "element too large", NULL, 0);
          conn_failed (w, c);
          return;
        }
      if (rest > 0)
        {
          c->rbuf = g_realloc (c->rbuf, rest);
          memcpy (c->rbuf, w->scratch + used, rest);
        }
      else
        {
          g_free (c->rbuf);
          c->rbuf = NULL;
        }
      c->rlen = rest;
      if (!conn_flush (w, c))
        {
          conn_failed (w, c);
          return;
        }
      if ((size_t) n < 65536)
        return;
    }
}

static void
conn_close (Worker *w, Conn *c)
{
  if (c->fd >= 0)
    {
      epoll_ctl (w->ep, EPOLL_CTL_DEL, c->fd, NULL);
      close (c->fd);
    }
  c->fd = -1;
  c->state = ST_IDLE_SLOT;
  c->want_out = FALSE;
  c->shut = FALSE;
  c->depth = 0;
  g_clear_pointer (&c->rbuf, g_free);
  g_clear_pointer (&c->wbuf, g_free);
  c->rlen = c->wlen = c->woff = c->wcap = 0;
}

static void
conn_start (Worker *w, Conn *c)
{
  c->attempts++;
  c->t_start = now_ns ();
  w->in_flight++;
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    {
      note_error (w, c, "socket failed", g_strerror (errno), 40);
      c->fd = -1;
      conn_failed (w, c);
      return;
    }
  int one = 1;
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (opt.scenario == SC_LATENCY)
    setsockopt (fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
  if (opt.n_sources > 0)
    {
      struct sockaddr_in src = { .sin_family = AF_INET,
                                 .sin_addr = opt.sources[w->next_source++ % opt.n_sources] };
      setsockopt (fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      if (bind (fd, (struct sockaddr *) &src, sizeof src) < 0)
        {
          note_error (w, c, "bind failed", g_strerror (errno), 40);
          close (fd);
          c->fd = -1;
          conn_failed (w, c);
          return;
        }
    }
  c->fd = fd;
  c->state = ST_CONNECTING;
  c->depth = 0;
  struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
  c->want_out = TRUE;
  epoll_ctl (w->ep, EPOLL_CTL_ADD, fd, &ev);
  if (connect (fd, (struct sockaddr *) &opt.dest, sizeof opt.dest) < 0 && errno != EINPROGRESS)
    {
      note_error (w, c, "connect failed", g_strerror (errno), 40);
      conn_failed (w, c);
      return;
    }
  send_stream_header (c);
}

static void
conn_event (Worker *w, Conn *c, guint32 events)
{
  if (c->state == ST_CONNECTING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
    {
      int err = 0;
      socklen_t el = sizeof err;
      getsockopt (c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
      if (err != 0)
        {
          note_error (w, c, "connect failed", g_strerror (err), 40);
          conn_failed (w, c);
          return;
        }
      c->state = ST_FEATURES1;
    }
  if (events & EPOLLIN)
    {
      conn_readable (w, c);
      if (c->fd < 0)
        return;
    }
  else if ((events & (EPOLLERR | EPOLLHUP)) && c->state == ST_CLOSING)
    {
      conn_closed (w, c);
      return;
    }
  else if (events & (EPOLLERR | EPOLLHUP))
    {
      note_error (w, c, "connection reset", NULL, 0);
      conn_failed (w, c);
      return;
    }
  if (c->fd >= 0 && !conn_flush (w, c))
    {
      note_error (w, c, "send failed", g_strerror (errno), 40);
      conn_failed (w, c);
    }
}

/* ---- per-scenario driving --------------------------------------------- */

static guint
setup_window (void)
{
  return MAX (1u, opt.concurrency / opt.threads);
}

/* Starts connections for the long-lived scenarios (idle, pairs) and for
 * registration, keeping at most setup_window() in flight. */
static void
ramp (Worker *w)
{
  if (atomic_load (&g_stop))
    return;
  if (opt.scenario == SC_REGISTER)
    {
      for (guint k = 0; k < 4096 && w->in_flight < setup_window (); k++)
        {
          Conn *c = NULL;
          for (guint s = 0; s < w->n_conns && c == NULL; s++)
            if (w->conns[s].fd < 0 && w->conns[s].state == ST_IDLE_SLOT)
              c = &w->conns[s];
          if (c == NULL)
            return;
          guint a = atomic_fetch_add (&g_next_account, 1);
          if (a >= opt.n)
            return;
          c->account = opt.first + a;
          c->attempts = 0;
          conn_start (w, c);
        }
      return;
    }
  if (opt.scenario == SC_LOGINS)
    {
      gint64 now = now_ns ();
      for (guint s = 0; s < w->n_conns; s++)
        {
          Conn *c = &w->conns[s];
          if (c->state == ST_CLOSING && now - c->t_start > 2 * G_GINT64_CONSTANT (1000000000))
            conn_closed (w, c); /* the server never closed its side */
          if (c->fd < 0 && c->state == ST_IDLE_SLOT)
            {
              c->account = opt.first + (c->account + w->n_conns * opt.threads - opt.first) % opt.n;
              conn_start (w, c);
            }
        }
      return;
    }
  if (opt.scenario == SC_CHURN)
    {
      /* The controller (run_churn) announces each wave, then its close. */
      int wave = atomic_load (&g_wave);
      if (wave != w->wave)
        {
          guint n = atomic_load (&g_wave_n);
          w->wave = wave;
          w->next_to_start = 0;
          w->wave_share = MIN (w->n_conns, n / opt.threads + (w->id < n % opt.threads ? 1 : 0));
          for (guint s = 0; s < w->n_conns; s++)
            w->conns[s].attempts = 0;
        }
      if (wave > 0 && atomic_load (&g_close_wave) == wave && w->closed_wave != wave)
        {
          w->closed_wave = wave;
          for (guint s = 0; s < w->next_to_start; s++)
            if (w->conns[s].state == ST_READY)
              conn_finish (w, &w->conns[s]);
          return;
        }
      for (guint k = 0; k < 4096 && w->next_to_start < w->wave_share && w->in_flight < setup_window (); k++)
        conn_start (w, &w->conns[w->next_to_start++]);
      return;
    }
  for (guint k = 0; k < 4096 && w->next_to_start < w->n_conns && w->in_flight < setup_window (); k++)
    conn_start (w, &w->conns[w->next_to_start++]);
}

static void
start_traffic (Worker *w)
{
  w->started_traffic = TRUE;
  if (opt.scenario != SC_THROUGHPUT)
    return;
  for (guint i = 0; i + 1 < w->n_conns; i += 2)
    {
      Conn *a = &w->conns[i], *b = &w->conns[i + 1];
      if (a->state != ST_READY || b->state != ST_READY)
        continue;
      for (guint k = 0; k < opt.window; k++)
        {
          Conn *from = k % 2 == 0 ? a : b;
          send_message (from);
          w->sent_msgs++;
        }
      conn_flush (w, a);
      conn_flush (w, b);
    }
}

/* Latency: message K of worker W is due at an absolute deadline,
 * start + (K × threads + W) / rate: the workers interleave and each sends
 * one message per deadline, not bursts per timer tick. */
static gint64
pace_deadline (const Worker *w, guint64 k)
{
  double slot = (double) k * (double) opt.threads + (double) w->id;
  return g_pace_start_ns + (gint64) (slot * 1e9 / opt.rate);
}

/* Sends every message whose deadline has passed, each with its own send()
 * and stamped just before it; records how late the generator was. */
static void
pace (Worker *w)
{
  if (!w->started_traffic || atomic_load_explicit (&g_stop, memory_order_relaxed) || w->n_conns < 2)
    return;
  guint pairs = w->n_conns / 2;
  for (guint k = 0; k < 100000; k++)
    {
      gint64 due = pace_deadline (w, w->paced_sent);
      if (now_ns () < due)
        return;
      guint pi = w->rr % pairs;
      Conn *a = &w->conns[2 * pi], *b = &w->conns[2 * pi + 1];
      Conn *from = (w->rr / pairs) % 2 == 0 ? a : b;
      w->rr++;
      w->paced_sent++;
      if (from->state != ST_READY || from->peer->state != ST_READY)
        continue;
      gint64 t = send_message (from);
      if (t == 0)
        continue;
      w->sent_msgs++;
      if (t >= g_timed_from_ns)
        {
          w->timed_sent++;
          hist_add (&w->late, (guint64) (t - due));
        }
      if (!conn_flush (w, from))
        conn_failed (w, from);
    }
}

/* A thread's schedstat: time on a CPU and time runnable but waiting for
 * one (other threads or processes on its core).  PATH:
 * /proc/thread-self/schedstat or /proc/PID/task/TID/schedstat. */
static gboolean
read_schedstat (const char *path, gint64 *run_ns, gint64 *wait_ns)
{
  g_autofree char *text = NULL;
  if (!g_file_get_contents (path, &text, NULL, NULL))
    return FALSE;
  char *end = NULL;
  *run_ns = g_ascii_strtoll (text, &end, 10);
  *wait_ns = end != NULL ? g_ascii_strtoll (end, NULL, 10) : 0;
  return TRUE;
}

static gint64
thread_runq_ns (void)
{
  gint64 run = 0, wait = 0;
  read_schedstat ("/proc/thread-self/schedstat", &run, &wait);
  return wait;
}

/* Schedstat of every thread of PID, keyed by thread id: a pair of gint64
 * (run, wait) per thread. */
static GHashTable *
process_schedstat (int pid)
{
  GHashTable *t = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autofree char *dir_path = g_strdup_printf ("/proc/%d/task", pid);
  GDir *dir = g_dir_open (dir_path, 0, NULL);
  if (dir == NULL)
    return t;
  for (const char *tid = g_dir_read_name (dir); tid != NULL; tid = g_dir_read_name (dir))
    {
      g_autofree char *path = g_strdup_printf ("%s/%s/schedstat", dir_path, tid);
      gint64 *v = g_new0 (gint64, 2);
      if (read_schedstat (path, &v[0], &v[1]))
        g_hash_table_insert (t, g_strdup (tid), v);
      else
        g_free (v);
    }
  g_dir_close (dir);
  return t;
}

/* The run-queue wait, between BEFORE and now, of PID's thread that ran
 * most in that time (Myna's loop, ejabberd's scheduler): how long the
 * server's busy thread waited for its CPU; -1 if unknown. */
static gint64
busiest_thread_wait_ns (int pid, GHashTable *before)
{
  g_autoptr(GHashTable) after = process_schedstat (pid);
  GHashTableIter it;
  gpointer key, value;
  gint64 best_run = -1, wait = -1;
  g_hash_table_iter_init (&it, after);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      const gint64 *a = value, *b = g_hash_table_lookup (before, key);
      gint64 run = a[0] - (b ? b[0] : 0);
      if (run > best_run)
        {
          best_run = run;
          wait = a[1] - (b ? b[1] : 0);
        }
    }
  return wait;
}

static void *
worker_main (void *data)
{
  Worker *w = data;
  struct epoll_event evs[256];
  gint64 hard_end = now_ns () + (gint64) ((opt.setup_timeout + opt.duration + 30) * 1e9);

  for (guint64 iter = 0; iter < G_GUINT64_CONSTANT (1) << 40; iter++)
    {
      if (atomic_load (&g_stop) || now_ns () > hard_end)
        break;
      if (w->wall0_ns == 0 && atomic_load_explicit (&g_measuring, memory_order_relaxed))
        {
          w->wall0_ns = now_ns ();
          w->rq0_ns = thread_runq_ns ();
        }
      ramp (w);
      if (IS_MUC (opt.scenario))
        muc_drive (w);
      else if (IS_PEP (opt.scenario))
        pep_drive (w);
      else if (!w->started_traffic && atomic_load (&g_go))
        start_traffic (w);
      /* Latency traffic: poll, never sleep.  A sleeping thread's vCPU
       * idles, and its wake-up on a timer or on data took up to ~1 ms
       * at p99 on the test VM, which would count in every latency. */
      gboolean polling = (opt.scenario == SC_LATENCY || opt.scenario == SC_MUCLAT || opt.scenario == SC_PEPLAT)
                         && w->started_traffic;
      gint64 lap = 0;
      guint64 sent_before = w->sent_msgs;
      if (polling)
        {
          lap = now_ns ();
          if (opt.scenario == SC_MUCLAT)
            muc_pace (w);
          else if (opt.scenario == SC_PEPLAT)
            pep_pace (w);
          else
            pace (w);
        }
      int n = epoll_wait (w->ep, evs, G_N_ELEMENTS (evs), polling ? 0 : 10);
      for (int i = 0; i < n; i++)
        {
          conn_event (w, evs[i].data.ptr, evs[i].events);
          if (opt.scenario == SC_LATENCY)
            pace (w); /* a deadline may pass while a batch is handled */
          else if (opt.scenario == SC_MUCLAT)
            muc_pace (w);
          else if (opt.scenario == SC_PEPLAT)
            pep_pace (w);
        }
      if (polling && w->wall0_ns != 0 && (n > 0 || w->sent_msgs != sent_before))
        w->work_ns += now_ns () - lap; /* idle laps are not the generator's work */
    }
  w->wall1_ns = now_ns ();
  w->rq1_ns = thread_runq_ns ();
  for (guint i = 0; i < w->n_conns; i++)
    if (w->conns[i].fd >= 0)
      conn_close (w, &w->conns[i]);
  return NULL;
}

/* ---- churn: the controller's side ------------------------------------ */

/* VmRSS of PID in KiB; 0 without a PID, -1 when unreadable. */
static gint64
proc_rss_kib (int pid)
{
  if (pid <= 0)
    return 0;
  char path[64];
  g_snprintf (path, sizeof path, "/proc/%d/status", pid);
  g_autofree char *text = NULL;
  if (!g_file_get_contents (path, &text, NULL, NULL))
    return -1;
  const char *p = strstr (text, "\nVmRSS:");
  return p != NULL ? g_ascii_strtoll (p + 7, NULL, 10) : -1;
}

/* Open descriptors of PID; -1 without a PID or when unreadable. */
static int
proc_fds (int pid)
{
  if (pid <= 0)
    return -1;
  char path[64];
  g_snprintf (path, sizeof path, "/proc/%d/fd", pid);
  GDir *dir = g_dir_open (path, 0, NULL);
  if (dir == NULL)
    return -1;
  int n = 0;
  while (g_dir_read_name (dir) != NULL)
    n++;
  g_dir_close (dir);
  return n;
}

typedef struct
{
  guint    waves, waves_done;
  guint64  bound, failed, dropped;
  gint64   rss_start, rss_first, rss_last, rss_max_after, rss_max_peak;
  int      fds_start;
  gboolean ok, interrupted;
} ChurnSummary;

/* Waits up to SECONDS (in 10 ms ticks) for a signal; TRUE when one came. */
static gboolean
signalled_within (const sigset_t *sigs, double seconds)
{
  gint64 end = now_ns () + (gint64) (seconds * 1e9);
  for (gint64 left = end - now_ns (); left > 0; left = end - now_ns ())
    {
      gint64 step = MIN (left, 10 * G_GINT64_CONSTANT (1000000));
      struct timespec ts = { 0, (long) step };
      siginfo_t si;
      if (sigtimedwait (sigs, &si, &ts) > 0)
        return TRUE;
    }
  return FALSE;
}

/* Waves of logins and clean closes until opt.n sessions have come and
 * gone.  Each wave: all its sessions bound (RSS sampled: the peak), all
 * closed with </stream:stream> and the server's own close seen on every
 * socket, then the server's descriptor count back near where it started
 * (it has dropped the connections), then two RSS samples opt.settle
 * seconds apart (Myna's sweep runs every second): the second is the
 * wave's "after" figure.  Every wait ends on its event or at the setup
 * timeout, which fails the run. */
static void
run_churn (const sigset_t *sigs, ChurnSummary *cs)
{
  int pid = opt.server_pid;
  cs->waves = (opt.n + opt.wave - 1) / opt.wave;
  cs->rss_start = proc_rss_kib (pid);
  cs->fds_start = proc_fds (pid);
  cs->rss_max_after = -1;
  cs->ok = TRUE;
  for (guint i = 1; i <= cs->waves && cs->ok; i++)
    {
      guint n = opt.n / cs->waves + (i <= opt.n % cs->waves ? 1 : 0);
      atomic_store (&g_bound, 0);
      atomic_store (&g_failed, 0);
      atomic_store (&g_released, 0);
      atomic_store (&g_dropped, 0);
      atomic_store (&g_wave_n, n);
      gint64 tw = now_ns ();
      atomic_store (&g_wave, (int) i);

      /* logins: until every session is bound or given up on */
      while (atomic_load (&g_bound) + atomic_load (&g_failed) < n)
        {
          if (signalled_within (sigs, 0.01))
            {
              cs->interrupted = TRUE;
              cs->ok = FALSE;
              break;
            }
          if (secs_since (tw) > opt.setup_timeout)
            {
              fprintf (stderr, "xmppload: wave %u: login timeout: %u bound, %u failed of %u\n",
                       i, atomic_load (&g_bound), atomic_load (&g_failed), n);
              cs->ok = FALSE;
              break;
            }
        }
      if (!cs->ok)
        break;
      double login_s = secs_since (tw);
      guint bound = atomic_load (&g_bound);
      gint64 rss_peak = proc_rss_kib (pid);
      int fds_peak = proc_fds (pid);

      /* close: until the server has closed every socket */
      gint64 tc = now_ns ();
      atomic_store (&g_close_wave, (int) i);
      while (atomic_load (&g_released) + atomic_load (&g_dropped) < bound)
        {
          if (signalled_within (sigs, 0.01))
            {
              cs->interrupted = TRUE;
              cs->ok = FALSE;
              break;
            }
          if (secs_since (tc) > opt.setup_timeout)
            {
              fprintf (stderr, "xmppload: wave %u: close timeout: %u of %u closed by the server\n",
                       i, atomic_load (&g_released), bound - atomic_load (&g_dropped));
              cs->ok = FALSE;
              break;
            }
        }
      if (!cs->ok)
        break;
      double close_s = secs_since (tc);

      /* the server's descriptors: back within 16 of the start (a log or
       * database file may have opened meanwhile) */
      int fds = proc_fds (pid);
      while (fds >= 0 && cs->fds_start >= 0 && fds > cs->fds_start + 16 && secs_since (tc) < 30)
        {
          if (signalled_within (sigs, 0.02))
            {
              cs->interrupted = TRUE;
              cs->ok = FALSE;
              break;
            }
          fds = proc_fds (pid);
        }
      if (!cs->ok)
        break;
      if (fds >= 0 && cs->fds_start >= 0 && fds > cs->fds_start + 16)
        fprintf (stderr, "xmppload: wave %u: the server still has %d descriptors (%d at the start)\n",
                 i, fds, cs->fds_start);
      double release_s = secs_since (tc);
      gint64 rss_released = proc_rss_kib (pid);
      if (signalled_within (sigs, opt.settle))
        {
          cs->interrupted = TRUE;
          cs->ok = FALSE;
          break;
        }
      gint64 rss_after = proc_rss_kib (pid);

      guint failed = atomic_load (&g_failed), dropped = atomic_load (&g_dropped);
      cs->waves_done = i;
      cs->bound += bound;
      cs->failed += failed;
      cs->dropped += dropped;
      if (i == 1)
        cs->rss_first = rss_after;
      else
        cs->rss_max_after = MAX (cs->rss_max_after, rss_after);
      cs->rss_last = rss_after;
      cs->rss_max_peak = MAX (cs->rss_max_peak, rss_peak);
      printf ("RESULT scenario=churn-wave server=%s wave=%u sessions=%u failed=%u dropped=%u login_s=%.2f"
              " close_s=%.2f release_s=%.2f fds_start=%d fds_peak=%d fds_after=%d rss_peak_kib=%" G_GINT64_FORMAT
              " rss_released_kib=%" G_GINT64_FORMAT " rss_after_kib=%" G_GINT64_FORMAT "\n",
              opt.server_label, i, bound, failed, dropped, login_s, close_s, release_s, cs->fds_start,
              fds_peak, fds, rss_peak, rss_released, rss_after);
      fflush (stdout);
    }
}

/* ---- muc: the controller's side -------------------------------------- */

typedef struct
{
  gboolean interrupted;
  gboolean ok;
  gint64   rss_bound;    /* KiB: every session bound, nobody in a room */
  gint64   rss_done;     /* KiB: everyone joined (or every room made), settled */
  double   setup_s;      /* login and join (or room making) time */
  double   measured;     /* muc, muclat: traffic time */
} MucSummary;

/* Waits until COND (a count) reaches NEED, or the setup timeout, or a
 * signal.  FALSE unless reached. */
static gboolean
muc_wait (const sigset_t *sigs, atomic_uint *count, guint need, gint64 t0, MucSummary *ms,
          const char *what)
{
  while (atomic_load (count) + atomic_load (&g_muc_failed) < need)
    {
      if (signalled_within (sigs, 0.05))
        {
          ms->interrupted = TRUE;
          return FALSE;
        }
      if (secs_since (t0) > opt.setup_timeout)
        {
          fprintf (stderr, "xmppload: setup timeout: %s %u of %u (%u refused)\n", what,
                   atomic_load (count), need, atomic_load (&g_muc_failed));
          return FALSE;
        }
    }
  return atomic_load (&g_muc_failed) == 0;
}

/* The muc scenarios: bound → RSS → joins (or rooms) → settle → RSS →
 * traffic for the duration (muc, muclat). */
static void
run_muc (const sigset_t *sigs, MucSummary *ms)
{
  gint64 t0 = now_ns ();
  if (!muc_wait (sigs, &g_bound, opt.n, t0, ms, "sessions bound"))
    return;
  fprintf (stderr, "xmppload: %u sessions bound in %.2f s\n", atomic_load (&g_bound), secs_since (t0));
  signalled_within (sigs, opt.settle);
  ms->rss_bound = proc_rss_kib (opt.server_pid);
  gint64 t1 = now_ns ();
  atomic_store (&g_go, 1);
  if (opt.scenario == SC_MUCROOMS)
    {
      if (!muc_wait (sigs, &g_rooms_made, opt.muc_rooms, t1, ms, "rooms made"))
        return;
      fprintf (stderr, "xmppload: %u persistent rooms made in %.2f s\n", atomic_load (&g_rooms_made),
               secs_since (t1));
    }
  else
    {
      if (!muc_wait (sigs, &g_muc_joined, opt.n, t1, ms, "occupants joined"))
        return;
      fprintf (stderr, "xmppload: %u occupants joined in %.2f s\n", atomic_load (&g_muc_joined),
               secs_since (t1));
    }
  ms->setup_s = secs_since (t0);
  signalled_within (sigs, opt.settle);
  ms->rss_done = proc_rss_kib (opt.server_pid);
  fprintf (stdout, "READY %u\n", atomic_load (&g_bound));
  fflush (stdout);
  if (opt.scenario == SC_MUCROOMS)
    {
      ms->ok = TRUE;
      return;
    }
  /* muclat: the first tenth (at most 1 s) is a warm-up */
  double warm = opt.scenario == SC_MUCLAT ? MIN (1.0, opt.duration / 10) : 0;
  g_pace_start_ns = now_ns ();
  g_timed_from_ns = g_pace_start_ns + (gint64) (warm * 1e9);
  atomic_store (&g_muc_traffic, 1);
  if (warm > 0 && signalled_within (sigs, warm))
    {
      ms->interrupted = TRUE;
      return;
    }
  gint64 m0 = now_ns ();
  atomic_store (&g_measuring, 1);
  ms->interrupted = signalled_within (sigs, opt.duration);
  atomic_store (&g_measuring, 0);
  ms->measured = secs_since (m0);
  ms->ok = !ms->interrupted;
}

/* ---- pep: the controller's side -------------------------------------- */

typedef struct
{
  gboolean interrupted;
  gboolean ok;
  gint64   rss_bound;    /* KiB: every session bound, no presence yet */
  gint64   rss_ready;    /* KiB: every contact online with caps, warm-up done */
  gint64   rss_after;    /* KiB: after the traffic and the drain */
  double   setup_s;      /* logins, presence (subscriptions), warm-up */
  double   warm_s;       /* from the presences to every contact's first item */
  double   measured;     /* traffic time */
  double   drain_s;      /* from the end of traffic until all acked items were delivered */
  gboolean drained;
} PepSummary;

/* The pep scenarios: bound → RSS → publisher's presence → contacts'
 * presence (pepsub: subscriptions, then done) → warm-up until every
 * contact got an item → RSS → traffic for the duration → drain → RSS. */
static void
run_pep (const sigset_t *sigs, PepSummary *ps)
{
  MucSummary ms = { 0 };
  gint64 t0 = now_ns ();
  guint total = opt.n + 1;
  if (!muc_wait (sigs, &g_bound, total, t0, &ms, "sessions bound"))
    goto out;
  fprintf (stderr, "xmppload: %u sessions bound in %.2f s\n", atomic_load (&g_bound), secs_since (t0));
  signalled_within (sigs, opt.settle);
  ps->rss_bound = proc_rss_kib (opt.server_pid);
  atomic_store (&g_go, 1); /* the publisher's presence */
  if (signalled_within (sigs, 0.5))
    goto out;
  gint64 t1 = now_ns ();
  atomic_store (&g_pep_phase, 1); /* the contacts' */
  if (opt.scenario == SC_PEPSUB)
    {
      if (!muc_wait (sigs, &g_pep_subs_c, opt.n, t1, &ms, "contacts subscribed both ways")
          || !muc_wait (sigs, &g_pep_subs_p, opt.n, t1, &ms, "approvals at the publisher"))
        goto out;
      ps->setup_s = secs_since (t1);
      fprintf (stderr, "xmppload: %u mutual subscriptions made in %.2f s\n", opt.n, ps->setup_s);
      ps->ok = TRUE;
      goto out;
    }
  /* let the servers ask for the caps before the warm-up begins */
  signalled_within (sigs, opt.settle);
  atomic_store (&g_pep_phase, 2);
  if (!muc_wait (sigs, &g_pep_warm, opt.n, t1, &ms, "contacts with a warm-up item"))
    goto out;
  ps->warm_s = secs_since (t1);
  ps->setup_s = secs_since (t0);
  fprintf (stderr, "xmppload: every contact got a warm-up item %.2f s after the presences (%u disco#info answered, %u warm-up items)\n",
           ps->warm_s, atomic_load (&g_pep_disco), g_pep_warm_sent);
  signalled_within (sigs, opt.settle);
  ps->rss_ready = proc_rss_kib (opt.server_pid);
  fprintf (stdout, "READY %u\n", atomic_load (&g_bound));
  fflush (stdout);
  /* peplat: the first tenth (at most 1 s) is a warm-up */
  double warm = opt.scenario == SC_PEPLAT ? MIN (1.0, opt.duration / 10) : 0;
  g_pace_start_ns = now_ns ();
  g_timed_from_ns = g_pace_start_ns + (gint64) (warm * 1e9);
  atomic_store (&g_pep_phase, 3);
  if (warm > 0 && signalled_within (sigs, warm))
    goto out;
  gint64 m0 = now_ns ();
  atomic_store (&g_measuring, 1);
  ps->interrupted = signalled_within (sigs, opt.duration);
  atomic_store (&g_measuring, 0);
  ps->measured = secs_since (m0);
  atomic_store (&g_pep_phase, 4);
  gint64 d0 = now_ns ();
  while (!atomic_load (&g_pep_drained) && secs_since (d0) < opt.pep_drain && !ps->interrupted)
    ps->interrupted = signalled_within (sigs, 0.01);
  ps->drain_s = secs_since (d0);
  ps->drained = atomic_load (&g_pep_drained);
  signalled_within (sigs, 0.2);
  ps->rss_after = proc_rss_kib (opt.server_pid);
  ps->ok = !ps->interrupted;
out:
  ps->interrupted = ps->interrupted || ms.interrupted;
}

/* ---- main ------------------------------------------------------------- */

static void
usage (FILE *f)
{
  fprintf (f,
    "usage: xmppload -s SCENARIO [options]\n"
    "  -s register|idle|logins|throughput|latency|churn|muc|muclat|mucrooms\n"
    "     muc: N sessions join room -j (session 0 creates it), then -p of them send\n"
    "          groupchat messages, -w in flight each: deliveries/s to all occupants;\n"
    "          with -R, the server's RSS before and after the joins (KiB/occupant)\n"
    "     muclat: the same room, -r messages/s from -p senders in turn: latency to\n"
    "          the last occupant of each message (and of every delivery)\n"
    "     mucrooms: N sessions make -m persistent rooms on service -j in all, each\n"
    "          joined, configured persistent and left; with -R, RSS before/after\n"
    "     pepsub: account FIRST (the publisher) and its N contacts FIRST+1..FIRST+N\n"
    "          make mutual presence subscriptions in-band, -c contacts at a time\n"
    "     pep: the contacts send presence with caps (NODE+notify) and answer the\n"
    "          servers' disco#info; after a warm-up item reached all of them the\n"
    "          publisher publishes to node -j with -w IQs in flight: deliveries/s,\n"
    "          publishes/s; then every contact must have got every item once\n"
    "     peplat: the same at -r items/s: latency to the last contact of each item\n"
    "  -H HOST (127.0.0.1)  -P PORT (5222)  -D DOMAIN (localhost)\n"
    "  -u PREFIX (user)  -x PASSWORD (pw)  -f FIRST account number (1)\n"
    "  -n N       accounts to register / sessions to hold / login pool (100);\n"
    "             churn: sessions in all (100000)\n"
    "  -c C       logins (or registrations) in flight (100)\n"
    "  -p P       pairs for throughput/latency (10)\n"
    "  -w W       messages in flight per pair, throughput (10)\n"
    "  -r R       aggregate messages/s, latency (2000)\n"
    "  -d SEC     measuring time (10); idle: hold time (0 = until SIGINT/SIGTERM)\n"
    "  -T SEC     setup timeout (120)\n"
    "  -t T       threads (1)\n"
    "  -b A,B,..  source addresses (127.0.0.x) to spread connections over\n"
    "  -N         no initial presence\n"
    "  -M N       enable stream management (XEP-0198) after bind, answer <r/>,\n"
    "             and acknowledge every N stanzas unasked (0: off, the default)\n"
    "  -L LABEL   server label for RESULT lines (server)\n"
    "  -W W       churn: sessions per wave (8500; accounts FIRST..FIRST+W-1 must exist)\n"
    "  -R PID     the server process: churn watches its VmRSS and descriptors,\n"
    "             latency reports how long its busiest thread waited for a CPU\n"
    "  -S SEC     churn: settle between the release and the RSS sample (1.2);\n"
    "             muc*: before each RSS sample\n"
    "  -j JID     muc, muclat: the room (room@service); mucrooms: the service;\n"
    "             pep, peplat: the node (http://jabber.org/protocol/tune)\n"
    "  -m M       mucrooms: rooms to make in all (10000)\n"
    "  -z BYTES   pep, peplat: padding in each item's payload (64)\n"
    "  -e SEC     pep, peplat: the longest wait for the last deliveries after the traffic (30)\n");
}

static gboolean
parse_sources (const char *list)
{
  g_auto(GStrv) parts = g_strsplit (list, ",", -1);
  guint n = g_strv_length (parts);
  opt.sources = g_new0 (struct in_addr, MAX (n, 1));
  for (guint i = 0; i < n; i++)
    {
      if (inet_pton (AF_INET, g_strstrip (parts[i]), &opt.sources[opt.n_sources]) != 1)
        return FALSE;
      if ((ntohl (opt.sources[opt.n_sources].s_addr) >> 24) != 127)
        {
          fprintf (stderr, "xmppload: source %s is not in 127.0.0.0/8\n", parts[i]);
          return FALSE;
        }
      opt.n_sources++;
    }
  return TRUE;
}

static void
raise_nofile (guint want)
{
  struct rlimit rl;
  if (getrlimit (RLIMIT_NOFILE, &rl) != 0)
    return;
  rlim_t target = MIN ((rlim_t) want, rl.rlim_max);
  if (rl.rlim_cur < target)
    {
      rl.rlim_cur = target;
      setrlimit (RLIMIT_NOFILE, &rl);
    }
  getrlimit (RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < want)
    fprintf (stderr, "xmppload: warning: open-file limit %lu < %u needed\n",
             (unsigned long) rl.rlim_cur, want);
}

int
main (int argc, char **argv)
{
  opt.scenario_name = NULL;
  opt.server_label = "server";
  opt.host = "127.0.0.1";
  opt.port = 5222;
  opt.domain = "localhost";
  opt.prefix = "user";
  opt.password = "pw";
  opt.first = 1;
  opt.n = 0;
  opt.wave = 8500;
  opt.settle = 1.2;
  opt.concurrency = 100;
  opt.pairs = 10;
  opt.window = 10;
  opt.rate = 2000;
  opt.duration = -1;
  opt.setup_timeout = 120;
  opt.threads = 1;
  opt.presence = TRUE;
  opt.pep_pad = 64;

  int ch;
  while ((ch = getopt (argc, argv, "s:H:P:D:u:x:f:n:c:p:w:r:d:T:t:b:NM:L:W:R:S:j:m:z:e:h")) != -1)
    {
      switch (ch)
        {
        case 's': opt.scenario_name = optarg; break;
        case 'H': opt.host = optarg; break;
        case 'P': opt.port = atoi (optarg); break;
        case 'D': opt.domain = optarg; break;
        case 'u': opt.prefix = optarg; break;
        case 'x': opt.password = optarg; break;
        case 'f': opt.first = (guint) strtoul (optarg, NULL, 10); break;
        case 'n': opt.n = (guint) strtoul (optarg, NULL, 10); break;
        case 'c': opt.concurrency = (guint) strtoul (optarg, NULL, 10); break;
        case 'p': opt.pairs = (guint) strtoul (optarg, NULL, 10); break;
        case 'w': opt.window = (guint) strtoul (optarg, NULL, 10); break;
        case 'r': opt.rate = g_ascii_strtod (optarg, NULL); break;
        case 'd': opt.duration = g_ascii_strtod (optarg, NULL); break;
        case 'T': opt.setup_timeout = g_ascii_strtod (optarg, NULL); break;
        case 't': opt.threads = (guint) strtoul (optarg, NULL, 10); break;
        case 'b': if (!parse_sources (optarg)) return 2; break;
        case 'N': opt.presence = FALSE; break;
        case 'M': opt.sm_ack_every = (guint) strtoul (optarg, NULL, 10); break;
        case 'L': opt.server_label = optarg; break;
        case 'W': opt.wave = (guint) strtoul (optarg, NULL, 10); break;
        case 'R': opt.server_pid = atoi (optarg); break;
        case 'S': opt.settle = g_ascii_strtod (optarg, NULL); break;
        case 'j': opt.muc_room = optarg; break;
        case 'm': opt.muc_rooms = (guint) strtoul (optarg, NULL, 10); break;
        case 'z': opt.pep_pad = (guint) strtoul (optarg, NULL, 10); break;
        case 'e': opt.pep_drain = g_ascii_strtod (optarg, NULL); break;
        case 'h': usage (stdout); return 0;
        default: usage (stderr); return 2;
        }
    }
  if (opt.scenario_name == NULL)
    {
      usage (stderr);
      return 2;
    }
  static const char *const names[] = { "register", "idle", "logins", "throughput", "latency", "churn",
                                        "muc", "muclat", "mucrooms", "pepsub", "pep", "peplat" };
  gboolean known = FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    if (strcmp (opt.scenario_name, names[i]) == 0)
      {
        opt.scenario = (Scenario) i;
        known = TRUE;
      }
  if (opt.n == 0)
    opt.n = opt.scenario == SC_CHURN ? 100000 : 100;
  if (!known || opt.threads < 1 || opt.threads > 64 || opt.concurrency < 1 || opt.pairs < 1
      || opt.window < 1 || opt.rate <= 0 || opt.setup_timeout <= 0 || opt.wave < 1
      || opt.settle < 0 || opt.server_pid < 0)
    {
      usage (stderr);
      return 2;
    }
  if (IS_MUC (opt.scenario))
    {
      if (opt.muc_room == NULL || strchr (opt.muc_room, '\'') != NULL)
        {
          fprintf (stderr, "xmppload: %s needs -j (a room, or for mucrooms a service)\n", opt.scenario_name);
          return 2;
        }
      opt.threads = 1; /* the room's bookkeeping is the one worker's */
      if (opt.muc_rooms == 0)
        opt.muc_rooms = 10000;
    }
  if (IS_PEP (opt.scenario))
    {
      if (opt.muc_room == NULL)
        opt.muc_room = "http://jabber.org/protocol/tune";
      if (strchr (opt.muc_room, '\'') != NULL || strchr (opt.muc_room, '<') != NULL
          || strchr (opt.muc_room, '&') != NULL)
        {
          fprintf (stderr, "xmppload: -j: a node name without ' < &\n");
          return 2;
        }
      opt.pep_node = opt.muc_room;
      opt.threads = 1;         /* the items' bookkeeping is the one worker's */
      opt.presence = FALSE;    /* pep_drive sends it, with caps */
      if (opt.pep_drain <= 0)
        opt.pep_drain = 30;
      pep_init ();
      g_trace = g_getenv ("XMPPLOAD_TRACE") != NULL;
    }
  if (opt.duration < 0)
    opt.duration = opt.scenario == SC_IDLE ? 0 : 10;
  if (opt.scenario == SC_IDLE && opt.duration == 0)
    opt.duration = 24 * 3600; /* "until told": still bounded */
  if (opt.scenario == SC_CHURN) /* the workers' bound: every wait of every wave */
    opt.duration = (double) ((opt.n + opt.wave - 1) / opt.wave) * (2 * opt.setup_timeout + 31 + opt.settle);
  opt.dest.sin_family = AF_INET;
  opt.dest.sin_port = htons ((guint16) opt.port);
  if (inet_pton (AF_INET, opt.host, &opt.dest.sin_addr) != 1
      || (ntohl (opt.dest.sin_addr.s_addr) >> 24) != 127)
    {
      fprintf (stderr, "xmppload: -H must be an IPv4 address in 127.0.0.0/8\n");
      return 2;
    }

  /* how many connection slots in all */
  guint total;
  switch (opt.scenario)
    {
    case SC_IDLE: total = opt.n; break;
    case SC_LOGINS: total = opt.concurrency; break;
    case SC_REGISTER: total = opt.concurrency; break;
    case SC_CHURN: total = MIN (opt.wave, opt.n); break;
    case SC_MUC: case SC_MUCLAT: case SC_MUCROOMS: total = opt.n; break;
    case SC_PEPSUB: case SC_PEP: case SC_PEPLAT: total = opt.n + 1; break;
    default: total = 2 * opt.pairs; break;
    }
  if (opt.scenario == SC_THROUGHPUT || opt.scenario == SC_LATENCY)
    opt.concurrency = MAX (opt.concurrency, 1);
  raise_nofile (total + 64);

  sigset_t sigs;
  sigemptyset (&sigs);
  sigaddset (&sigs, SIGINT);
  sigaddset (&sigs, SIGTERM);
  pthread_sigmask (SIG_BLOCK, &sigs, NULL);
  signal (SIGPIPE, SIG_IGN);

  /* distribute slots: pairs stay within one worker */
  workers = g_new0 (Worker, opt.threads);
  guint unit = (opt.scenario == SC_THROUGHPUT || opt.scenario == SC_LATENCY) ? 2 : 1;
  guint units = total / unit;
  guint acct_next = 0;
  for (guint t = 0; t < opt.threads; t++)
    {
      Worker *w = &workers[t];
      w->id = t;
      w->next_source = t;
      w->n_conns = (units / opt.threads + (t < units % opt.threads ? 1 : 0)) * unit;
      w->conns = g_new0 (Conn, MAX (w->n_conns, 1));
      w->ep = epoll_create1 (EPOLL_CLOEXEC);
      for (guint i = 0; i < w->n_conns; i++)
        {
          Conn *c = &w->conns[i];
          c->fd = -1;
          c->slot = i;
          c->index = acct_next;
          c->account = opt.first + (acct_next++ % total);
          if (unit == 2 && i % 2 == 1)
            {
              c->peer = &w->conns[i - 1];
              w->conns[i - 1].peer = c;
            }
        }
    }
  if (opt.scenario == SC_LOGINS && opt.n < total)
    fprintf (stderr, "xmppload: note: %u workers share %u accounts\n", total, opt.n);

  /* CLOCK_REALTIME → CLOCK_MONOTONIC for the kernel's receive stamps: the
   * offset read with the narrowest bracket of a few tries */
  gint64 best = G_MAXINT64;
  for (guint i = 0; i < 16; i++)
    {
      struct timespec r;
      gint64 a = now_ns ();
      clock_gettime (CLOCK_REALTIME, &r);
      gint64 b = now_ns ();
      if (b - a < best)
        {
          best = b - a;
          g_real_to_mono_ns = a + (b - a) / 2 - ((gint64) r.tv_sec * G_GINT64_CONSTANT (1000000000) + r.tv_nsec);
        }
    }

  g_autoptr(GHashTable) server_sched0 = NULL;
  gint64 t0 = now_ns ();
  if (opt.scenario == SC_LOGINS)
    atomic_store (&g_measuring, 1);
  if (opt.scenario == SC_MUCLAT)
    {
      g_muc_cap = (guint) MIN (opt.rate * (opt.duration + 2) + 16, 50e6);
      g_muc_sent_at = g_new0 (gint64, g_muc_cap);
      g_muc_got = g_new0 (guint, g_muc_cap);
      g_muc_worst = g_new0 (gint64, g_muc_cap);
    }
  for (guint t = 0; t < opt.threads; t++)
    pthread_create (&workers[t].thread, NULL, worker_main, &workers[t]);

  /* the controller: bounded by setup timeout + duration */
  gboolean ready = FALSE, interrupted = FALSE;
  gint64 measure_start = opt.scenario == SC_LOGINS ? t0 : 0;
  guint need = opt.scenario == SC_REGISTER || opt.scenario == SC_LOGINS ? 0 : total;
  double measured = 0;
  struct timespec tick = { 0, 100 * 1000000 };
  ChurnSummary churn = { 0 };
  MucSummary mucs = { 0 };
  PepSummary peps = { 0 };
  if (opt.scenario == SC_CHURN)
    {
      run_churn (&sigs, &churn);
      interrupted = churn.interrupted;
      measure_start = t0;
    }
  if (IS_MUC (opt.scenario))
    {
      run_muc (&sigs, &mucs);
      interrupted = mucs.interrupted;
    }
  if (IS_PEP (opt.scenario))
    {
      run_pep (&sigs, &peps);
      interrupted = peps.interrupted;
    }
  for (guint loop = 0; opt.scenario != SC_CHURN && !IS_MUC (opt.scenario) && !IS_PEP (opt.scenario) && loop < 100u * 3600u * 48u; loop++)
    {
      siginfo_t si;
      if (sigtimedwait (&sigs, &si, &tick) > 0)
        {
          interrupted = TRUE;
          break;
        }
      if (opt.scenario == SC_REGISTER)
        {
          guint inflight = 0;
          for (guint t = 0; t < opt.threads; t++)
            inflight += workers[t].in_flight; /* racy read, only a hint */
          if (atomic_load (&g_next_account) >= opt.n && inflight == 0)
            break;
          if (secs_since (t0) > opt.setup_timeout)
            break;
          continue;
        }
      if (opt.scenario == SC_LOGINS)
        {
          if (secs_since (t0) >= opt.duration)
            break;
          continue;
        }
      if (!ready)
        {
          guint done = atomic_load (&g_bound) + atomic_load (&g_failed);
          if (done >= need)
            {
              ready = TRUE;
              fprintf (stdout, "READY %u\n", atomic_load (&g_bound));
              fprintf (stderr, "xmppload: %u sessions bound, %u failed in %.2f s\n",
                       atomic_load (&g_bound), atomic_load (&g_failed), secs_since (t0));
              fflush (stdout);
              fflush (stderr);
              /* latency: the first tenth (at most 1 s) is a warm-up */
              double warm = opt.scenario == SC_LATENCY ? MIN (1.0, opt.duration / 10) : 0;
              g_pace_start_ns = now_ns ();
              g_timed_from_ns = g_pace_start_ns + (gint64) (warm * 1e9);
              measure_start = g_timed_from_ns;
              atomic_store (&g_go, 1);
              if (warm > 0)
                {
                  struct timespec ws = { (time_t) warm, (long) ((warm - (double) (time_t) warm) * 1e9) };
                  nanosleep (&ws, NULL);
                }
              if (opt.server_pid > 0)
                server_sched0 = process_schedstat (opt.server_pid);
              atomic_store (&g_measuring, 1);
            }
          else if (secs_since (t0) > opt.setup_timeout)
            {
              fprintf (stderr, "xmppload: setup timeout: %u bound, %u failed of %u\n",
                       atomic_load (&g_bound), atomic_load (&g_failed), need);
              break;
            }
          continue;
        }
      if ((double) (now_ns () - measure_start) / 1e9 >= opt.duration)
        break;
    }
  if (measure_start != 0)
    measured = (double) (now_ns () - measure_start) / 1e9;
  if (IS_MUC (opt.scenario))
    measured = mucs.measured;
  if (IS_PEP (opt.scenario))
    measured = peps.measured;
  /* the server's busy thread waiting for its CPU: other processes there */
  double server_rq_pct = -1;
  if (server_sched0 != NULL && measured > 0)
    {
      gint64 wait = busiest_thread_wait_ns (opt.server_pid, server_sched0);
      if (wait >= 0)
        server_rq_pct = 100 * (double) wait / 1e9 / measured;
    }
  atomic_store (&g_measuring, 0);
  atomic_store (&g_stop, 1);
  for (guint t = 0; t < opt.threads; t++)
    pthread_join (workers[t].thread, NULL);

  /* aggregate */
  Hist lat = { 0 }, late = { 0 }, rxdelay = { 0 }, klat = { 0 }, muc_all = { 0 };
  guint64 timed_sent = 0;
  double gen_work = 0, gen_wall = 0, gen_rq = 0;
  guint64 delivered = 0, sent = 0, logins = 0, lfail = 0, reg = 0, confl = 0, rfail = 0, errors = 0;
  const char *last_error = NULL;
  for (guint t = 0; t < opt.threads; t++)
    {
      Worker *w = &workers[t];
      hist_merge (&lat, &w->lat);
      hist_merge (&late, &w->late);
      hist_merge (&rxdelay, &w->rxdelay);
      hist_merge (&klat, &w->klat);
      hist_merge (&muc_all, &w->muc_all);
      timed_sent += w->timed_sent;
      if (w->wall0_ns != 0)
        {
          gen_work += (double) w->work_ns;
          gen_wall += (double) (w->wall1_ns - w->wall0_ns);
          gen_rq += (double) (w->rq1_ns - w->rq0_ns);
        }
      delivered += w->delivered;
      sent += w->sent_msgs;
      logins += w->logins;
      lfail += w->login_failures;
      reg += w->registered;
      confl += w->conflicts;
      rfail += w->reg_failures;
      errors += w->errors;
      if (w->last_error[0])
        last_error = w->last_error;
    }
  double total_s = secs_since (t0);
  int rc = 0;
  switch (opt.scenario)
    {
    case SC_REGISTER:
      printf ("registered %" G_GUINT64_FORMAT " (already there %" G_GUINT64_FORMAT
              ", failed %" G_GUINT64_FORMAT ") in %.2f s\n", reg, confl, rfail, total_s);
      printf ("RESULT scenario=register server=%s accounts=%u registered=%" G_GUINT64_FORMAT
              " existing=%" G_GUINT64_FORMAT " failed=%" G_GUINT64_FORMAT " seconds=%.2f per_s=%.1f\n",
              opt.server_label, opt.n, reg, confl, rfail, total_s, (double) reg / MAX (total_s, 1e-9));
      rc = reg + confl == opt.n ? 0 : 1;
      break;
    case SC_IDLE:
      printf ("held %u sessions (%u failed) for %.2f s\n", atomic_load (&g_bound), atomic_load (&g_failed), measured);
      printf ("RESULT scenario=idle server=%s sessions=%u failed=%u errors=%" G_GUINT64_FORMAT " held_s=%.2f\n",
              opt.server_label, atomic_load (&g_bound), atomic_load (&g_failed), errors, measured);
      rc = ready && atomic_load (&g_failed) == 0 ? 0 : 1;
      break;
    case SC_LOGINS:
      printf ("%" G_GUINT64_FORMAT " logins in %.2f s with %u in flight: %.1f/s, latency mean %.2f ms p50 %.2f ms p99 %.2f ms\n",
              logins, measured, opt.concurrency, (double) logins / MAX (measured, 1e-9),
              lat.count ? lat.sum / (double) lat.count / 1e6 : 0, hist_quantile (&lat, 0.5) / 1e6,
              hist_quantile (&lat, 0.99) / 1e6);
      printf ("RESULT scenario=logins server=%s concurrency=%u logins=%" G_GUINT64_FORMAT " failures=%" G_GUINT64_FORMAT
              " seconds=%.2f logins_per_s=%.1f mean_ms=%.3f p50_ms=%.3f p99_ms=%.3f\n",
              opt.server_label, opt.concurrency, logins, lfail, measured, (double) logins / MAX (measured, 1e-9),
              lat.count ? lat.sum / (double) lat.count / 1e6 : 0, hist_quantile (&lat, 0.5) / 1e6,
              hist_quantile (&lat, 0.99) / 1e6);
      rc = logins > 0 ? 0 : 1;
      break;
    case SC_THROUGHPUT:
      printf ("%" G_GUINT64_FORMAT " messages delivered in %.2f s over %u pairs (window %u): %.0f/s\n",
              delivered, measured, opt.pairs, opt.window, (double) delivered / MAX (measured, 1e-9));
      printf ("RESULT scenario=throughput server=%s pairs=%u window=%u sm_ack_every=%u bound=%u delivered=%" G_GUINT64_FORMAT
              " errors=%" G_GUINT64_FORMAT " seconds=%.2f delivered_per_s=%.0f\n",
              opt.server_label, opt.pairs, opt.window, opt.sm_ack_every, atomic_load (&g_bound), delivered, errors, measured,
              (double) delivered / MAX (measured, 1e-9));
      rc = ready && delivered > 0 ? 0 : 1;
      break;
    case SC_LATENCY:
      /* The generator's own share: how late each send was against its
       * deadline, the send rate achieved in the timed window, how long
       * received data waited for it (recv time − the kernel's receive
       * stamp; a lower bound when one read returns several messages), and
       * the fraction of the window its threads spent in polling laps that
       * did something (busy; the rest is idle polling) and waiting for a CPU (other processes
       * on its core).  kernel_p*: latency up to the
       * kernel's receipt, i.e. without the generator's receive delay. */
      printf ("%" G_GUINT64_FORMAT " messages timed at %.0f/s over %u pairs: p50 %.3f ms p99 %.3f ms max %.3f ms\n",
              lat.count, opt.rate, opt.pairs, hist_quantile (&lat, 0.5) / 1e6,
              hist_quantile (&lat, 0.99) / 1e6, (double) lat.max / 1e6);
      printf ("generator: sent %.0f/s in the timed window, late p50 %.1f us p99 %.1f us max %.1f us;"
              " receive delay p50 %.1f us p99 %.1f us max %.1f us; busy %.1f %%, waiting for the CPU %.1f %%\n",
              (double) timed_sent / MAX (measured, 1e-9), hist_quantile (&late, 0.5) / 1e3,
              hist_quantile (&late, 0.99) / 1e3, (double) late.max / 1e3, hist_quantile (&rxdelay, 0.5) / 1e3,
              hist_quantile (&rxdelay, 0.99) / 1e3, (double) rxdelay.max / 1e3,
              gen_wall > 0 ? 100 * gen_work / gen_wall : 0, gen_wall > 0 ? 100 * gen_rq / gen_wall : 0);
      printf ("RESULT scenario=latency server=%s pairs=%u rate=%.0f sent=%" G_GUINT64_FORMAT " delivered=%" G_GUINT64_FORMAT
              " timed=%" G_GUINT64_FORMAT " errors=%" G_GUINT64_FORMAT " seconds=%.2f delivered_per_s=%.0f"
              " p50_ms=%.3f p99_ms=%.3f max_ms=%.3f sent_per_s=%.0f late_p50_us=%.1f late_p99_us=%.1f"
              " late_max_us=%.1f rxdelay_p50_us=%.1f rxdelay_p99_us=%.1f rxdelay_max_us=%.1f"
              " kernel_p50_ms=%.3f kernel_p99_ms=%.3f gen_busy_pct=%.1f gen_runq_pct=%.1f server_runq_pct=%.1f\n",
              opt.server_label, opt.pairs, opt.rate, sent, delivered, lat.count, errors, measured,
              (double) delivered / MAX (measured, 1e-9), hist_quantile (&lat, 0.5) / 1e6,
              hist_quantile (&lat, 0.99) / 1e6, (double) lat.max / 1e6,
              (double) timed_sent / MAX (measured, 1e-9), hist_quantile (&late, 0.5) / 1e3,
              hist_quantile (&late, 0.99) / 1e3, (double) late.max / 1e3,
              hist_quantile (&rxdelay, 0.5) / 1e3, hist_quantile (&rxdelay, 0.99) / 1e3,
              (double) rxdelay.max / 1e3, hist_quantile (&klat, 0.5) / 1e6, hist_quantile (&klat, 0.99) / 1e6,
              gen_wall > 0 ? 100 * gen_work / gen_wall : 0, gen_wall > 0 ? 100 * gen_rq / gen_wall : 0,
              server_rq_pct);
      rc = ready && lat.count > 0 ? 0 : 1;
      break;
    case SC_CHURN:
      {
        /* growth: the worst "after" of waves 2..n against the first's */
        char growth[32] = "n/a";
        if (churn.waves_done >= 2 && churn.rss_first > 0)
          g_snprintf (growth, sizeof growth, "%.1f",
                      100.0 * (double) (churn.rss_max_after - churn.rss_first) / (double) churn.rss_first);
        printf ("%" G_GUINT64_FORMAT " sessions in %u of %u waves in %.1f s; RSS after the first wave %"
                G_GINT64_FORMAT " KiB, after the last %" G_GINT64_FORMAT " KiB, growth %s %%\n",
                churn.bound, churn.waves_done, churn.waves, measured, churn.rss_first, churn.rss_last, growth);
        printf ("RESULT scenario=churn server=%s target=%u wave_size=%u total=%" G_GUINT64_FORMAT
                " waves=%u failed=%" G_GUINT64_FORMAT " dropped=%" G_GUINT64_FORMAT " errors=%" G_GUINT64_FORMAT
                " seconds=%.1f rss_start_kib=%" G_GINT64_FORMAT " rss_max_peak_kib=%" G_GINT64_FORMAT
                " rss_first_kib=%" G_GINT64_FORMAT " rss_last_kib=%" G_GINT64_FORMAT
                " rss_max_after_kib=%" G_GINT64_FORMAT " growth_pct=%s\n",
                opt.server_label, opt.n, total, churn.bound, churn.waves_done, churn.failed, churn.dropped,
                errors, measured, churn.rss_start, churn.rss_max_peak, churn.rss_first, churn.rss_last,
                churn.waves_done >= 2 ? churn.rss_max_after : churn.rss_first, growth);
        rc = churn.ok && churn.waves_done == churn.waves && churn.failed == 0 ? 0 : 1;
      }
      break;
    case SC_MUC:
    case SC_MUCLAT:
    case SC_MUCROOMS:
    case SC_PEPSUB:
    case SC_PEP:
    case SC_PEPLAT:
      break; /* below */
    }
  if (IS_MUC (opt.scenario))
    {
      guint joined = atomic_load (&g_muc_joined);
      char per[32] = "n/a";
      guint made = atomic_load (&g_rooms_made);
      guint counted = opt.scenario == SC_MUCROOMS ? made : joined;
      if (mucs.rss_bound > 0 && mucs.rss_done > 0 && counted > 0)
        g_snprintf (per, sizeof per, "%.2f", (double) (mucs.rss_done - mucs.rss_bound) / counted);
      if (opt.scenario == SC_MUCROOMS)
        {
          printf ("%u persistent rooms made by %u sessions in %.1f s; RSS %" G_GINT64_FORMAT " → %"
                  G_GINT64_FORMAT " KiB: %s KiB per room\n", made, atomic_load (&g_bound), mucs.setup_s,
                  mucs.rss_bound, mucs.rss_done, per);
          printf ("RESULT scenario=mucrooms server=%s sessions=%u rooms=%u refused=%u seconds=%.1f"
                  " rooms_per_s=%.1f rss_before_kib=%" G_GINT64_FORMAT " rss_after_kib=%" G_GINT64_FORMAT
                  " kib_per_room=%s\n",
                  opt.server_label, atomic_load (&g_bound), made, atomic_load (&g_muc_failed), mucs.setup_s,
                  made / MAX (mucs.setup_s, 1e-9), mucs.rss_bound, mucs.rss_done, per);
          rc = mucs.ok && made == opt.muc_rooms ? 0 : 1;
        }
      else
        {
          printf ("%u occupants (setup %.1f s; RSS %" G_GINT64_FORMAT " → %" G_GINT64_FORMAT
                  " KiB: %s KiB per occupant); %" G_GUINT64_FORMAT " deliveries in %.2f s: %.0f/s\n",
                  joined, mucs.setup_s, mucs.rss_bound, mucs.rss_done, per, delivered, measured,
                  (double) delivered / MAX (measured, 1e-9));
          printf ("RESULT scenario=%s server=%s occupants=%u senders=%u window=%u rate=%.0f refused=%u"
                  " setup_s=%.1f rss_before_kib=%" G_GINT64_FORMAT " rss_after_kib=%" G_GINT64_FORMAT
                  " kib_per_occupant=%s sent=%" G_GUINT64_FORMAT " delivered=%" G_GUINT64_FORMAT
                  " errors=%" G_GUINT64_FORMAT " seconds=%.2f delivered_per_s=%.0f messages_per_s=%.1f"
                  " complete=%" G_GUINT64_FORMAT " last_p50_ms=%.3f last_p99_ms=%.3f last_max_ms=%.3f"
                  " all_p50_ms=%.3f all_p99_ms=%.3f late_p99_us=%.1f\n",
                  opt.scenario_name, opt.server_label, joined, opt.pairs, opt.window, opt.rate,
                  atomic_load (&g_muc_failed), mucs.setup_s, mucs.rss_bound, mucs.rss_done, per, sent,
                  delivered, errors, measured, (double) delivered / MAX (measured, 1e-9),
                  (double) delivered / MAX (joined, 1) / MAX (measured, 1e-9), g_muc_complete,
                  hist_quantile (&lat, 0.5) / 1e6, hist_quantile (&lat, 0.99) / 1e6, (double) lat.max / 1e6,
                  hist_quantile (&muc_all, 0.5) / 1e6, hist_quantile (&muc_all, 0.99) / 1e6,
                  hist_quantile (&late, 0.99) / 1e3);
          rc = mucs.ok && delivered > 0 && (opt.scenario == SC_MUC || lat.count > 0) ? 0 : 1;
        }
    }
  if (opt.scenario == SC_PEPSUB)
    {
      printf ("RESULT scenario=pepsub server=%s contacts=%u subscribed=%u approvals=%u refused=%u seconds=%.1f per_s=%.1f\n",
              opt.server_label, opt.n, atomic_load (&g_pep_subs_c), atomic_load (&g_pep_subs_p),
              atomic_load (&g_muc_failed), peps.setup_s, atomic_load (&g_pep_subs_c) / MAX (peps.setup_s, 1e-9));
      rc = peps.ok ? 0 : 1;
    }
  else if (IS_PEP (opt.scenario))
    {
      /* every item acknowledged must have reached every contact once */
      guint64 expected = (guint64) opt.n * g_pep_acked;
      guint64 lost = expected > g_pep_firsts ? expected - g_pep_firsts : 0;
      printf ("%u contacts (setup %.1f s, warm-up %.1f s; RSS %" G_GINT64_FORMAT " → %" G_GINT64_FORMAT " → %"
              G_GINT64_FORMAT " KiB); %" G_GUINT64_FORMAT " items published (%" G_GUINT64_FORMAT " while measuring),"
              " %" G_GUINT64_FORMAT " deliveries in %.2f s: %.0f/s; lost %" G_GUINT64_FORMAT ", duplicates %"
              G_GUINT64_FORMAT ", drain %.1f s\n",
              opt.n, peps.setup_s, peps.warm_s, peps.rss_bound, peps.rss_ready, peps.rss_after, g_pep_acked,
              g_pep_acked_m, delivered, measured, (double) delivered / MAX (measured, 1e-9), lost, g_pep_dups,
              peps.drain_s);
      printf ("RESULT scenario=%s server=%s contacts=%u window=%u rate=%.0f node=%s pad=%u disco_answered=%u"
              " warm_items=%u setup_s=%.1f warm_s=%.2f rss_bound_kib=%" G_GINT64_FORMAT " rss_ready_kib=%" G_GINT64_FORMAT
              " rss_after_kib=%" G_GINT64_FORMAT " kib_per_contact=%.2f published=%" G_GUINT64_FORMAT " publish_errors=%" G_GUINT64_FORMAT
              " delivered=%" G_GUINT64_FORMAT " errors=%" G_GUINT64_FORMAT " seconds=%.2f delivered_per_s=%.0f"
              " unique_per_s=%.0f publishes_per_s=%.1f items_per_s=%.1f complete=%" G_GUINT64_FORMAT " expected=%" G_GUINT64_FORMAT
              " received=%" G_GUINT64_FORMAT " lost=%" G_GUINT64_FORMAT " duplicates=%" G_GUINT64_FORMAT " gaps=%" G_GUINT64_FORMAT
              " stale=%" G_GUINT64_FORMAT " drained=%d drain_s=%.2f"
              " last_p50_ms=%.3f last_p99_ms=%.3f last_max_ms=%.3f all_p50_ms=%.3f all_p99_ms=%.3f late_p99_us=%.1f\n",
              opt.scenario_name, opt.server_label, opt.n, opt.window, opt.rate, opt.pep_node, opt.pep_pad,
              atomic_load (&g_pep_disco), g_pep_warm_sent, peps.setup_s, peps.warm_s, peps.rss_bound,
              peps.rss_ready, peps.rss_after,
              peps.rss_bound > 0 && peps.rss_ready > 0 ? (double) (peps.rss_ready - peps.rss_bound) / opt.n : 0.0,
              g_pep_acked, g_pep_perr, delivered, errors, measured, (double) delivered / MAX (measured, 1e-9),
              (double) g_pep_firsts_m / MAX (measured, 1e-9), (double) g_pep_acked_m / MAX (measured, 1e-9),
              (double) g_pep_firsts_m / opt.n / MAX (measured, 1e-9),
              g_pep_complete, expected, g_pep_firsts, lost, g_pep_dups, g_pep_gaps, g_pep_stale, peps.drained,
              peps.drain_s, hist_quantile (&lat, 0.5) / 1e6, hist_quantile (&lat, 0.99) / 1e6, (double) lat.max / 1e6,
              hist_quantile (&muc_all, 0.5) / 1e6, hist_quantile (&muc_all, 0.99) / 1e6,
              hist_quantile (&late, 0.99) / 1e3);
      rc = peps.ok && delivered > 0 && lost == 0 && g_pep_dups == 0 ? 0 : 1;
    }
  if (last_error != NULL)
    fprintf (stderr, "xmppload: last error: %s\n", last_error);
  if (interrupted && opt.scenario == SC_IDLE)
    rc = ready ? 0 : 1;
  fflush (stdout);
  for (guint t = 0; t < opt.threads; t++)
    {
      g_free (workers[t].conns);
      g_free (workers[t].scratch);
      g_free (workers[t].lat.b);
      g_free (workers[t].late.b);
      g_free (workers[t].rxdelay.b);
      g_free (workers[t].klat.b);
      g_free (workers[t].muc_all.b);
      close (workers[t].ep);
    }
  g_free (workers);
  g_free (lat.b);
  g_free (muc_all.b);
  g_free (late.b);
  g_free (g_muc_sent_at);
  g_free (g_muc_got);
  g_free (g_muc_worst);
  g_free (g_pep_sent_at);
  g_free (g_pep_got);
  g_free (g_pep_worst);
  g_free (g_pep_last);
  g_free (g_pep_pub);
  g_free (g_pep_ver_c);
  g_free (g_pep_ver_p);
  g_free (g_pep_pad);
  g_free (opt.sources);
  return rc;
}
