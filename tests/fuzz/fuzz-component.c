/* fuzz-component: whole external-component exchanges (XEP-0114) through
 * the real server and the component module serving gw.localhost.  Each
 * input is a sequence of steps on a TCP connection to the module's
 * listener (127.0.0.1, a free port): stream headers (the right one, other
 * namespaces, other or no domains, a second header), handshakes (right,
 * wrong, in capitals, padded, empty, another element), stanzas with
 * `from` inside, outside or missing and fuzzed payloads, raw bytes,
 * stanzas the server routes to JIDs of the domain (so the module writes
 * to the component), a second connection claiming the domain, and an
 * early close.  After each step the main loop runs until idle.
 *
 * Invariants: no crash or sanitizer report; no GLib critical; and once
 * the client has closed, the domain is free again: a new connection with
 * the right handshake is accepted (gets <handshake/>), so no link
 * outlives its client.  FUZZ_COMPONENT_TRACE=1 prints what the server
 * sent. */
#include "fuzz-server.h"

#include <poll.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define DOMAIN    "gw.localhost"
#define SECRET    "fuzz-secret-1"
#define MAX_STEPS 32

static MynaServer *server;
static guint16     port;

/* ---- the component's side ------------------------------------------------- */

typedef struct {
  int      fd;
  GString *in;      /* everything the server sent (its tail) */
} Peer;

static Peer
peer_connect (void)
{
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons (port),
                           .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  Peer p = { .fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0),
             .in = g_string_new (NULL) };
  struct pollfd pfd = { .fd = p.fd, .events = POLLOUT };
  int err = 0;
  socklen_t elen = sizeof err;

  /* Non-blocking, then waited for: libFuzzer's timer signals would
   * interrupt a blocking connect. */
  if (p.fd < 0 || (connect (p.fd, (struct sockaddr *) &a, sizeof a) != 0 && errno != EINPROGRESS))
    g_error ("fuzz-component: connect: %s", g_strerror (errno));
  while (poll (&pfd, 1, 10000) < 0 && errno == EINTR)
    ;
  if (getsockopt (p.fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0)
    g_error ("fuzz-component: connect: %s", g_strerror (err != 0 ? err : errno));
  return p;
}

static void
peer_write (Peer *p, const char *data, gsize len)
{
  fuzz_write (p->fd, data, len, "FUZZ_COMPONENT_TRACE");
}

static void
peer_send (Peer *p, const char *text)
{
  peer_write (p, text, strlen (text));
}

/* Reads what is there; TRUE if anything was. */
static gboolean
peer_read (Peer *p)
{
  return fuzz_read (p->fd, p->in);
}

static void
peer_close (Peer *p)
{
  if (p->fd >= 0)
    close (p->fd);
  p->fd = -1;
}

/* Runs the main loop until the server is idle and nothing more comes. */
static void
pump (Peer *p)
{
  for (guint round = 0; round < 10000; round++)
    {
      gboolean busy = FALSE;

      for (guint i = 0; i < 1000 && g_main_context_iteration (NULL, FALSE); i++)
        busy = TRUE;
      if (p != NULL && peer_read (p))
        busy = TRUE;
      myna_storage_flush (server->storage, NULL);
      if (!busy && !g_main_context_pending (NULL))
        return;
    }
}

/* The id of the server's stream header, or NULL. */
static char *
stream_id (Peer *p)
{
  const char *at = strstr (p->in->str, " id='");

  return at != NULL ? g_strndup (at + 5, strcspn (at + 5, "'")) : NULL;
}

static const char *const headers[] = {
  "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
  "xmlns:stream='http://etherx.jabber.org/streams' to='" DOMAIN "'>",
  "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
  "to='" DOMAIN "'>",
  "<stream:stream xmlns='jabber:component:accept' "
  "xmlns:stream='http://etherx.jabber.org/streams' to='other.localhost'>",
  "<stream:stream xmlns='jabber:component:accept' "
  "xmlns:stream='http://etherx.jabber.org/streams'>",
  "<stream:stream xmlns='jabber:component:accept' "
  "xmlns:stream='http://etherx.jabber.org/streams' to='GW.LOCALHOST'>",
  "<stream xmlns='http://etherx.jabber.org/streams' to='" DOMAIN "'>",
};

/* A header, its answer read. */
static void
send_header (Peer *p, guint variant)
{
  peer_send (p, headers[variant % G_N_ELEMENTS (headers)]);
  pump (p);
}

/* A handshake: right for the stream id (plain, capitals, padded), wrong,
 * empty, or another element. */
static void
send_handshake (Peer *p, guint variant)
{
  g_autofree char *id = stream_id (p);
  g_autofree char *joined = g_strconcat (id != NULL ? id : "", SECRET, NULL);
  g_autofree char *digest = g_compute_checksum_for_string (G_CHECKSUM_SHA1, joined, -1);
  g_autofree char *upper = g_ascii_strup (digest, -1);
  g_autofree char *text = NULL;

  switch (variant % 6)
    {
    case 0: text = g_strdup_printf ("<handshake>%s</handshake>", digest); break;
    case 1: text = g_strdup_printf ("<handshake>%s</handshake>", upper); break;
    case 2: text = g_strdup_printf ("<handshake>\n %s \n</handshake>", digest); break;
    case 3: text = g_strdup ("<handshake>0123456789abcdef0123456789abcdef01234567</handshake>"); break;
    case 4: text = g_strdup ("<handshake/>"); break;
    default: text = g_strdup_printf ("<message><body>%s</body></message>", digest); break;
    }
  peer_send (p, text);
  pump (p);
}

static const char *const froms[] = {
  " from='bob@" DOMAIN "/r'", " from='" DOMAIN "'", "", " from='mallory@localhost'",
  " from='@@'", " from='x@sub." DOMAIN "'",
};

/* A stanza from the component: one of three kinds, `from` chosen, the
 * payload as body text (raw: it may break the XML). */
static void
send_stanza (Peer *p, Input *in)
{
  guint kind = take (in), f = take (in);
  gsize len;
  const char *payload = take_payload (in, &len);
  const char *from = froms[f % G_N_ELEMENTS (froms)];
  g_autofree char *text = NULL;

  switch (kind % 4)
    {
    case 0:
      text = g_strdup_printf ("<message to='alice@localhost/x'%s><body>%.*s</body></message>",
                              from, (int) len, payload);
      break;
    case 1:
      text = g_strdup_printf ("<iq type='get' id='i1' to='localhost'%s><ping xmlns='urn:xmpp:ping'/>"
                              "%.*s</iq>", from, (int) len, payload);
      break;
    case 2:
      text = g_strdup_printf ("<presence to='alice@localhost'%s>%.*s</presence>", from,
                              (int) len, payload);
      break;
    default:
      text = g_strdup_printf ("<message to='x@" DOMAIN "'%s>%.*s</message>", from,
                              (int) len, payload);
      break;
    }
  peer_send (p, text);
  pump (p);
}

/* A stanza the server routes to a JID of the domain (from a local
 * account), so the module writes it to the component. */
static void
route_to_domain (Peer *p, Input *in)
{
  guint which = take (in);
  gsize len;
  const char *payload = take_payload (in, &len);
  g_autofree char *text = g_utf8_make_valid (payload, (gssize) len);
  g_autoptr(MynaStanza) st = NULL;

  g_strcanon (text, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .-", '_');
  switch (which % 4)
    {
    case 0:
      st = myna_stanza_build ("<message from='alice@localhost/x' to='bob@" DOMAIN "' type='chat'>"
                              "<body>%s</body></message>", text);
      break;
    case 1:
      st = myna_stanza_build ("<iq from='alice@localhost/x' to='" DOMAIN "' type='get' id='%s'>"
                              "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>", text);
      break;
    case 2:
      st = myna_stanza_build ("<presence from='alice@localhost/x' to='bob@" DOMAIN "/r'>"
                              "<status>%s</status></presence>", text);
      break;
    default:
      st = myna_stanza_build ("<iq from='alice@localhost/x' to='bob@" DOMAIN "/r' type='result' "
                              "id='%s'/>", text);
      break;
    }
  if (st != NULL)
    myna_server_route (server, st);
  pump (p);
}

/* One step; FALSE to stop (the peer closed). */
static gboolean
step (Peer *p, Input *in)
{
  gsize len;
  const char *raw;

  if (in->left == 0)
    return FALSE;
  switch (take (in) % 8)
    {
    case 0: send_header (p, take (in)); break;
    case 1: send_handshake (p, take (in)); break;
    case 2: send_stanza (p, in); break;
    case 3:
      raw = take_payload (in, &len);
      peer_write (p, raw, len);
      pump (p);
      break;
    case 4: route_to_domain (p, in); break;
    case 5:
      {
        /* Another connection claims the domain, then leaves. */
        Peer q = peer_connect ();
        send_header (&q, 0);
        send_handshake (&q, 0);
        peer_close (&q);
        pump (NULL);
        g_string_free (q.in, TRUE);
        break;
      }
    case 6:
      shutdown (p->fd, SHUT_WR);
      pump (p);
      return FALSE;
    default:
      peer_send (p, "</stream:stream>");
      pump (p);
      break;
    }
  return TRUE;
}

static void
server_init (void)
{
  g_autofree char *conf = NULL;
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t alen = sizeof a;

  g_log_set_writer_func (fuzz_quiet_writer, NULL, NULL);
  /* A free port for the listener (the module binds it again at once). */
  if (fd < 0 || bind (fd, (struct sockaddr *) &a, sizeof a) != 0
      || getsockname (fd, (struct sockaddr *) &a, &alen) != 0)
    g_error ("fuzz-component: no free port: %s", g_strerror (errno));
  port = ntohs (a.sin_port);
  close (fd);
  conf = g_strdup_printf ("[global]\n"
                          "data_dir = %s\n"
                          "module_path = %s\n"
                          "modules = auth;bind;roster;presence;disco;ping\n"
                          "admin_socket =\n"
                          "log_level = warning\n"
                          "[listener:c2s]\n"
                          "address = 127.0.0.1\n"
                          "port = 0\n"
                          "[host:localhost]\n"
                          "[module:component]\n"
                          "port = %u\n"
                          "max_buffer = 64K\n"
                          "[component:" DOMAIN "]\n"
                          "module = component\n"
                          "component.secret = " SECRET "\n",
                          fuzz_make_data_dir ("component"), MYNA_BUILD_MODULEDIR, port);
  server = fuzz_server_start (conf);
  pump (NULL);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  Input in = { data, size };
  Peer p, check;

  if (server == NULL)
    server_init ();
  p = peer_connect ();
  /* Odd first byte: the input starts with the right header and handshake. */
  if (take (&in) & 1)
    {
      send_header (&p, 0);
      send_handshake (&p, 0);
    }
  for (guint i = 0; i < MAX_STEPS && step (&p, &in); i++)
    ;
  if (g_getenv ("FUZZ_COMPONENT_TRACE") != NULL)
    fprintf (stderr, "---- server sent:\n%s\n", p.in->str);
  peer_close (&p);
  pump (NULL);

  /* The domain is free again: a new component gets in. */
  check = peer_connect ();
  send_header (&check, 0);
  send_handshake (&check, 0);
  if (strstr (check.in->str, "<handshake/>") == NULL)
    {
      fprintf (stderr, "fuzz-component: the domain stayed taken after its client left; "
                       "the server sent: %s\n", check.in->str);
      abort ();
    }
  peer_close (&check);
  pump (NULL);
  g_string_free (p.in, TRUE);
  g_string_free (check.in, TRUE);
  return 0;
}
