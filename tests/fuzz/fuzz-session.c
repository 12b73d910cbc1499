/* fuzz-session: whole post-authentication exchanges through the real
 * server and the shipped module set (auth bind roster presence offline
 * disco ping version vcard private blocking last register sm csi carbons
 * mam cloud_notify, and muc serving conference.localhost).  Each input gets three sessions, logged in (PLAIN)
 * and bound over socketpairs before its first byte: slot 0 is
 * alice/phone, slot 1 alice/laptop, slot 2 bob/desk.  The input is a
 * sequence of chunks, each starting at the beginning of the input or
 * after "\n@"; the first byte of a chunk says what it is:
 *
 *   '0' '1' '2'  the rest is written as client bytes to that slot
 *   'w'          the main loop runs until the server is idle
 *   'x' S        slot S's client drops its socket (EOF, no </stream>)
 *   'l' S        the core cuts slot S's transport
 *                (myna_session_lose_transport, as the ping module does)
 *   'r' S H P K  slot S resumes (XEP-0198) on a new connection: logs in,
 *                sends <resume previd h/>; H picks h (the count the
 *                client actually received, 0, off by one, 2^32-1, 2^32,
 *                -1, text, absent...), P the previd (its own, another
 *                slot's, bogus, absent, empty); K odd keeps the old
 *                socket open (the server must close it with <conflict/>)
 *   'b' S K      slot S logs in again on a new connection and binds its
 *                resource (K as above)
 *   't' N        the timer wheel jumps forward: N '0' 1.1s (ack requests),
 *                '1' 31s, '2' 5m1s (resumption windows expire), else 1 day
 *   other        the byte chooses the slot (byte % 3), the rest is written
 *
 * Client bytes are not processed until a 'w', a special chunk or the end
 * of the input runs the loop, so chunks to several slots may interleave.
 * At the end every client leaves, every session (hibernated ones too) is
 * closed, and the accounts are deleted (firing account/deleted as mynactl
 * does) and created again: nothing carries over to the next input.
 *
 * Invariants: no crash or sanitizer report; no GLib critical (a guard
 * reached from network input is a bug); no connection or session
 * outlives the end of the input.  FUZZ_SESSION_TRACE=1 prints what each
 * client sent and received. */
#include "fuzz-server.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define NS_SASL  "urn:ietf:params:xml:ns:xmpp-sasl"
#define HOST     "localhost"
#define PASSWORD "wonderland"
#define NSLOTS   3
#ifdef MYNA_HAVE_HTTP
#define PUSH_MODULES ";rest;push"
#define PUSH_CONF    "[module:rest]\ntoken = fuzz-token-0123456789\n[module:push]\napi_key = k\n"
#else
#define PUSH_MODULES ""
#define PUSH_CONF    ""
#endif
#define MAX_CHUNKS 256

static MynaServer   *server;
static MynaListener *listener;
static MynaHost     *host;
static gboolean      trace;

static const char *const slot_user[NSLOTS] = { "alice", "alice", "bob" };
static const char *const slot_resource[NSLOTS] = { "phone", "laptop", "desk" };
static const char *const accounts[] = { "alice", "bob" };

static const char header[] =
  "<?xml version='1.0'?><stream:stream to='" HOST "' xmlns='jabber:client' "
  "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";

/* ---- the clients ----------------------------------------------------------- */

/* One client connection and what it saw.  A small scanner follows the
 * server's stream: it counts the stanzas (top-level message, presence,
 * iq) received since stream management was enabled — the client's `h` —
 * and keeps the resumption id of the last <enabled/>. */
typedef struct {
  int       fd;          /* -1: none */
  GString  *tail;        /* the last bytes received */
  GString  *tag;         /* the tag being scanned (its start) */
  gboolean  in_tag;
  char      quote;       /* inside an attribute value: its quote */
  int       depth;
  gboolean  counting;    /* stream management enabled */
  guint32   h;
  char     *sm_id;
} Slot;

static Slot slots[NSLOTS];
/* Client sockets an input left open when it logged a slot in again. */
static GArray *kept;

/* The value of attribute @name in the tag text @tag, or NULL. */
static char *
tag_attr (const char *tag, const char *name)
{
  g_autofree char *pat1 = g_strdup_printf (" %s='", name);
  g_autofree char *pat2 = g_strdup_printf (" %s=\"", name);
  const char *p = strstr (tag, pat1);
  char q = '\'';

  if (p == NULL)
    {
      p = strstr (tag, pat2);
      q = '"';
    }
  if (p == NULL)
    return NULL;
  p += strlen (pat1);
  const char *end = strchr (p, q);
  return end != NULL ? g_strndup (p, (gsize) (end - p)) : NULL;
}

/* A whole tag (without its '<' and '>') was read. */
static void
slot_tag (Slot *c, const char *t, gsize len)
{
  if (len == 0 || t[0] == '?' || t[0] == '!')
    return;
  if (t[0] == '/')
    {
      if (c->depth > 0)
        c->depth--;
      return;
    }
  gboolean empty = t[len - 1] == '/';
  gsize n = strcspn (t, " \t\r\n/");
  g_autofree char *name = g_strndup (t, n);

  if (strcmp (name, "stream:stream") == 0)
    {
      c->depth = 1;
      return;
    }
  if (c->depth == 1)
    {
      if (c->counting && (strcmp (name, "message") == 0 || strcmp (name, "presence") == 0
                          || strcmp (name, "iq") == 0))
        c->h++;
      else if (strcmp (name, "enabled") == 0)
        {
          c->counting = TRUE;
          c->h = 0;
          char *id = tag_attr (t, "id");
          if (id != NULL)
            {
              g_free (c->sm_id);
              c->sm_id = id;
            }
        }
      else if (strcmp (name, "failed") == 0)
        c->counting = FALSE;
    }
  if (!empty)
    c->depth++;
}

static void
slot_scan (Slot *c, const char *buf, gsize len)
{
  for (gsize i = 0; i < len; i++)
    {
      char ch = buf[i];

      if (!c->in_tag)
        {
          if (ch == '<')
            {
              c->in_tag = TRUE;
              c->quote = 0;
              g_string_truncate (c->tag, 0);
            }
          continue;
        }
      if (c->quote != 0)
        {
          if (ch == c->quote)
            c->quote = 0;
        }
      else if (ch == '\'' || ch == '"')
        c->quote = ch;
      else if (ch == '>')
        {
          c->in_tag = FALSE;
          slot_tag (c, c->tag->str, c->tag->len);
          continue;
        }
      if (c->tag->len < 4096)
        g_string_append_c (c->tag, ch);
    }
}

/* Reads what is there; TRUE if anything was. */
static gboolean
slot_read (Slot *c)
{
  char buf[16384];
  gboolean any = FALSE;
  ssize_t n;

  while (c->fd >= 0 && (n = recv (c->fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
    {
      if (trace)
        fprintf (stderr, "server → %ld: %.*s\n", (long) (c - slots), (int) n, buf);
      slot_scan (c, buf, (gsize) n);
      if (c->tail->len > 65536)
        g_string_erase (c->tail, 0, c->tail->len - 4096);
      g_string_append_len (c->tail, buf, n);
      any = TRUE;
    }
  return any;
}

static void
slot_close (Slot *c)
{
  if (c->fd >= 0)
    {
      slot_read (c);
      close (c->fd);
    }
  c->fd = -1;
}

/* Runs the main loop until the server has nothing left to do: no source
 * ready, no work on a worker, no storage write pending, nothing more for
 * the clients to read. */
static void
pump (void)
{
  for (guint round = 0; round < 10000; round++)
    {
      gboolean busy = FALSE;

      for (guint i = 0; i < 1000 && g_main_context_iteration (NULL, FALSE); i++)
        busy = TRUE;
      for (guint i = 0; i < NSLOTS; i++)
        if (slot_read (&slots[i]))
          busy = TRUE;
      if (myna_work_outstanding () > 0)
        {
          g_main_context_iteration (NULL, TRUE);   /* a worker wakes it */
          continue;
        }
      guint64 before = server->stanzas_out;
      myna_storage_flush (server->storage, NULL);
      if (!busy && server->stanzas_out == before && !g_main_context_pending (NULL))
        return;
    }
}

static void
slot_write (Slot *c, const char *data, gsize len)
{
  if (trace)
    fprintf (stderr, "%ld → server: %.*s\n", (long) (c - slots), (int) len, data);
  for (guint tries = 0; len > 0 && c->fd >= 0 && tries < 64;)
    {
      ssize_t n = send (c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        {
          pump ();              /* the server reads, and writes back */
          tries++;
          continue;
        }
      if (n <= 0)
        return;                 /* closed by the server */
      data += n;
      len -= (gsize) n;
    }
}

static void
slot_send (Slot *c, const char *text)
{
  slot_write (c, text, strlen (text));
}

/* A new connection for slot @i, logged in as its user: TRUE when the
 * server said <success/> and the stream was restarted. */
static gboolean
slot_login (guint i)
{
  Slot *c = &slots[i];
  int fds[2];

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0)
    g_error ("fuzz-session: socketpair: %s", g_strerror (errno));
  c->fd = fds[0];
  c->in_tag = FALSE;
  c->depth = 0;
  g_string_truncate (c->tail, 0);
  g_autofree char *ip = g_strdup_printf ("192.0.2.%u", i + 1);
  if (myna_connection_new (server, listener, fds[1], ip, ip) == NULL)
    {
      slot_close (c);
      return FALSE;
    }
  slot_send (c, header);
  g_autoptr(GString) plain = g_string_new (NULL);
  g_string_append_len (plain, "", 1);
  g_string_append (plain, slot_user[i]);
  g_string_append_len (plain, "", 1);
  g_string_append (plain, PASSWORD);
  g_autofree char *b64 = g_base64_encode ((const guchar *) plain->str, plain->len);
  g_autofree char *auth = g_strdup_printf ("<auth xmlns='" NS_SASL "' mechanism='PLAIN'>%s</auth>",
                                           b64);
  slot_send (c, auth);
  pump ();
  if (strstr (c->tail->str, "<success") == NULL)
    {
      slot_close (c);           /* the account is gone (register's <remove/>) */
      pump ();
      return FALSE;
    }
  slot_send (c, header);
  return TRUE;
}

/* Logs slot @i in and binds its resource. */
static void
slot_bind (guint i)
{
  if (!slot_login (i))
    return;
  g_autofree char *bind = g_strdup_printf (
      "<iq type='set' id='bind%u'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
      "<resource>%s</resource></bind></iq>", i, slot_resource[i]);
  slot_send (&slots[i], bind);
  pump ();
}

/* Logs slot @i in and resumes a session: @hmode picks the h, @idmode the
 * previd. */
static void
slot_resume (guint i, guint hmode, guint idmode)
{
  Slot *c = &slots[i];
  g_autofree char *id = NULL;
  g_autofree char *h = NULL;

  switch (idmode % 5)
    {
    case 0: id = g_strdup (c->sm_id); break;
    case 1: id = g_strdup (slots[(i + 1) % NSLOTS].sm_id); break;
    case 2: id = g_strdup ("bogus"); break;
    case 3: break;
    default: id = g_strdup (""); break;
    }
  if (idmode % 5 < 2 && id == NULL)
    id = g_strdup ("none");
  switch (hmode % 10)
    {
    case 0: h = g_strdup_printf ("%u", c->h); break;
    case 1: h = g_strdup ("0"); break;
    case 2: h = g_strdup_printf ("%u", c->h + 1); break;
    case 3: h = g_strdup_printf ("%u", c->h - 1); break;
    case 4: h = g_strdup ("4294967295"); break;
    case 5: h = g_strdup ("4294967296"); break;
    case 6: h = g_strdup ("-1"); break;
    case 7: h = g_strdup ("abc"); break;
    case 8: break;
    default: h = g_strdup_printf ("%" G_GUINT64_FORMAT, (guint64) c->h + G_GUINT64_CONSTANT (4294967296)); break;
    }
  if (!slot_login (i))
    return;
  g_autoptr(GString) x = g_string_new ("<resume xmlns='urn:xmpp:sm:3'");
  if (id != NULL)
    {
      g_string_append (x, " previd='");
      myna_xml_escape_append (x, id, -1);
      g_string_append_c (x, '\'');
    }
  if (h != NULL)
    g_string_append_printf (x, " h='%s'", h);
  g_string_append (x, "/>");
  slot_send (c, x->str);
  pump ();
}

/* The bound (or hibernated) session of slot @i, or NULL. */
static MynaSession *
slot_session (guint i)
{
  g_autoptr(MynaJid) jid = myna_jid_new (slot_user[i], HOST, slot_resource[i], NULL);
  return jid != NULL ? myna_host_find_session (host, jid) : NULL;
}

/* ---- the server ------------------------------------------------------------ */

static void
done_flag (const GError *error, gpointer data)
{
  if (error != NULL)
    g_error ("fuzz-session: account setup: %s", error->message);
  *(gboolean *) data = TRUE;
}

/* Creates the accounts (the first time, and after each input). */
static void
accounts_create (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (accounts); i++)
    {
      gboolean created = FALSE;
      myna_account_create (server->storage, HOST, accounts[i], PASSWORD, done_flag, &created, NULL);
      while (!created)
        g_main_context_iteration (NULL, TRUE);
    }
  pump ();
}

/* Deletes every account as mynactl does: modules drop what they keep. */
static void
accounts_delete (void)
{
  g_auto(GStrv) users = myna_account_list (server->storage, HOST, NULL);

  for (guint i = 0; users != NULL && users[i] != NULL; i++)
    {
      g_autoptr(MynaJid) bare = myna_jid_new (users[i], HOST, NULL, NULL);
      MynaCall *call = myna_call_new_for (host, bare);
      myna_host_fire_event (host, MYNA_EVENT_ACCOUNT_DELETED, call, NULL);
      myna_call_free (call);
      myna_account_delete (server->storage, HOST, users[i], NULL, NULL, NULL);
    }
  pump ();
}

static void
server_init (void)
{
  trace = g_getenv ("FUZZ_SESSION_TRACE") != NULL;
  fuzz_log_all = trace;
  g_log_set_writer_func (fuzz_quiet_writer, NULL, NULL);
  /* The shipped module set (conf/myna.conf), and androidpn push where the
   * HTTP side is built (its notification IQs, their answers and their
   * acknowledgements run in the sessions; nothing posts here), with an
   * app server that is
   * a user (bob) reachable, so cloud_notify publishes reach a client. */
  g_autofree char *conf = g_strdup_printf (
      "[global]\n"
      "data_dir = %s\n"
      "module_path = %s\n"
      "modules = auth;bind;roster;presence;offline;disco;ping;version;vcard;private;"
      "blocking;last;register;sm;csi;carbons;mam;cloud_notify" PUSH_MODULES "\n"
      "c2s_require_encryption = false\n"
      "admin_socket =\n"
      "log_level = warning\n"
      "[listener:c2s]\n"
      "address = 127.0.0.1\n"
      "port = 0\n"
      "[host:" HOST "]\n"
      "[module:auth]\n"
      "allow_plain_insecure = true\n"
      "max_failures = 1000\n"
      "[module:register]\n"
      "allow_registration = false\n"
      "allow_insecure = true\n"
      "[module:cloud_notify]\n"
      "include_body = true\n"
      /* Multi-user chat as conf/myna.conf serves it (issue 13). */
      "[component:conference." HOST "]\n"
      "module = muc\n"
      PUSH_CONF,
      fuzz_make_data_dir ("session"), MYNA_BUILD_MODULEDIR);
  server = fuzz_server_start (conf);
  listener = server->listeners->pdata[0];
  host = myna_server_get_host (server, HOST);
  myna_accounts_set_iterations (16);
  for (guint i = 0; i < NSLOTS; i++)
    {
      slots[i].fd = -1;
      slots[i].tail = g_string_new (NULL);
      slots[i].tag = g_string_new (NULL);
    }
  kept = g_array_new (FALSE, FALSE, sizeof (int));
  accounts_create ();
}

/* ---- the input ------------------------------------------------------------- */

/* A mode byte: a digit counts as its value, anything else as itself. */
static guint
mode_of (guint8 b)
{
  return b >= '0' && b <= '9' ? (guint) (b - '0') : b;
}

static guint
slot_of (const guint8 *p, gsize len)
{
  return len > 0 ? mode_of (p[0]) % NSLOTS : 0;
}

/* One chunk: @code, then @len bytes at @p. */
static void
run_chunk (guint8 code, const guint8 *p, gsize len)
{
  guint i = slot_of (p, len);
  MynaSession *s;

  switch (code)
    {
    case '0': case '1': case '2':
      slot_write (&slots[code - '0'], (const char *) p, len);
      break;
    case 'w':
      pump ();
      break;
    case 'x':
      pump ();
      slot_close (&slots[i]);
      pump ();
      break;
    case 'l':
      pump ();
      if ((s = slot_session (i)) != NULL)
        myna_session_lose_transport (s, "connection-timeout", "fuzz: transport lost");
      pump ();
      break;
    case 'r':
    case 'b':
      pump ();
      if (len < (code == 'r' ? 4u : 2u) || (p[code == 'r' ? 3 : 1] & 1) == 0)
        {
          slot_close (&slots[i]);
          pump ();
        }
      else if (slots[i].fd >= 0)
        {
          /* Left open (the server must close it): closed at the end. */
          g_array_append_val (kept, slots[i].fd);
          slots[i].fd = -1;
        }
      if (code == 'r')
        slot_resume (i, len > 1 ? mode_of (p[1]) : 0, len > 2 ? mode_of (p[2]) : 0);
      else
        slot_bind (i);
      break;
    case 't':
      pump ();
      myna_timers_advance_for_testing (len == 0 || p[0] == '0' ? 1100 * G_TIME_SPAN_MILLISECOND
                                       : p[0] == '1' ? 31 * G_TIME_SPAN_SECOND
                                       : p[0] == '2' ? 301 * G_TIME_SPAN_SECOND
                                       : G_TIME_SPAN_DAY);
      pump ();
      break;
    default:
      slot_write (&slots[code % NSLOTS], (const char *) p, len);
      break;
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static const guint8 sep[] = { '\n', '@' };

  if (server == NULL)
    server_init ();
  for (guint i = 0; i < NSLOTS; i++)
    {
      slots[i].counting = FALSE;
      slots[i].h = 0;
      g_clear_pointer (&slots[i].sm_id, g_free);
      slot_bind (i);
    }

  const guint8 *p = data, *end = data + size;
  if (p < end && *p == '@')
    p++;
  for (guint n = 0; p < end && n < MAX_CHUNKS; n++)
    {
      const guint8 *next = memmem (p, (gsize) (end - p), sep, sizeof sep);
      const guint8 *stop = next != NULL ? next : end;

      if (stop > p)
        {
          run_chunk (p[0], p + 1, (gsize) (stop - p - 1));
        }
      p = next != NULL ? next + sizeof sep : end;
    }

  /* Everyone leaves; every session ends; the accounts start afresh. */
  pump ();
  for (guint i = 0; i < kept->len; i++)
    close (g_array_index (kept, int, i));
  g_array_set_size (kept, 0);
  for (guint i = 0; i < NSLOTS; i++)
    slot_close (&slots[i]);
  pump ();
  g_autoptr(GPtrArray) sessions = myna_host_list_sessions (host);
  for (guint i = 0; i < sessions->len; i++)
    myna_session_close (sessions->pdata[i], NULL, NULL);
  pump ();
  if (g_hash_table_size (server->connections) != 0)
    {
      fprintf (stderr, "fuzz-session: %u connections outlived their clients\n",
               g_hash_table_size (server->connections));
      abort ();
    }
  g_autoptr(GPtrArray) left = myna_host_list_sessions (host);
  if (left->len != 0)
    {
      fprintf (stderr, "fuzz-session: %u sessions outlived the input\n", left->len);
      abort ();
    }
  accounts_delete ();
  accounts_create ();
  return 0;
}
