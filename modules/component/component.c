/* component: external components (XEP-0114, the Jabber Component
 * Protocol) serving a domain of this server.
 *
 *   [component:gateway.localhost]
 *   module = component
 *   component.secret = a-long-random-secret
 *
 * The domain is a [component:] like any other (docs/modules.md, "Serving
 * a domain"): the core routes every stanza to it or to a JID in it to
 * this module's hooks, which hand it to the external process connected
 * for it; while none is, they pass and the core answers as for a domain
 * nobody serves (service-unavailable to an iq get/set and a message,
 * presence dropped), and the disco module answers disco on the domain
 * from what is registered (component/generic).
 *
 * The process connects over TCP to the module's listener ([module:component]
 * interface, default 127.0.0.1, and port, default 5347; one listener for
 * every component domain with the same address), opens a stream in
 * jabber:component:accept to the domain, and proves it knows the secret:
 * <handshake> with the hex SHA-1 of the stream id and the secret (XEP-0114
 * §3).  Then every <message/>, <presence/> and <iq/> it sends is routed as
 * the server routes any stanza (to local users, rooms, other components),
 * with a `from` in its domain (none: the domain itself; another domain:
 * the stream ends with <invalid-from/>, RFC 6120 §4.9.3.9).  Stanzas go to
 * it in jabber:component:accept.
 *
 * Stream errors (RFC 6120 §4.9), each with a log line: a header in
 * another namespace <invalid-namespace/>, to a domain this listener does
 * not serve <host-unknown/>, a wrong handshake <not-authorized/>, a second
 * connection for a domain already connected <conflict/> (the first one
 * stays), anything but a stanza after the handshake
 * <unsupported-stanza-type/>, XML past the limits (max_stanza_size, depth,
 * attributes) <policy-violation/>, output a slow reader leaves unread past
 * max_buffer <resource-constraint/>.  At most max_pending connections may
 * be waiting for their handshake (handshake_timeout each). */
#include <myna/module.h>
#include <myna/xmlstream.h>

#include <gio/gio.h>
#include <string.h>

#define NS_COMPONENT "jabber:component:accept"
#define NS_STREAMS   "http://etherx.jabber.org/streams"
#define NS_STANZAS   "urn:ietf:params:xml:ns:xmpp-streams"

/* [module:component] (and component.KEY in a [component:] section). */
typedef struct {
  char   *secret;
  char   *interface;
  gint64  port;
  gint64  max_stanza_size;
  gint64  max_buffer;
  gint64  handshake_timeout;  /* ms */
  gint64  max_pending;
} ComponentConfig;

typedef struct _Listener Listener;
typedef struct _Link Link;

/* The instance serving one component domain. */
typedef struct {
  MynaModule *mod;
  char       *domain;
  Listener   *listener;
  Link       *link;          /* the connected process, or NULL */
} Component;

/* One TCP listener, shared by the instances with the same address. */
struct _Listener {
  char           *key;        /* "ADDRESS PORT" */
  GSocketService *service;
  GPtrArray      *components; /* Component* (borrowed) */
  GPtrArray      *links;      /* Link* not yet handshaken (borrowed) */
  gsize           max_pending;
};

typedef enum {
  LINK_HEADER,
  LINK_HANDSHAKE,
  LINK_OPEN,
} LinkState;

/* One connection, listed either in its listener's pending links (before
 * the handshake) or as its component's link.  Its I/O is GLib sources
 * on the non-blocking socket, which closing destroys: no callback into
 * this module runs after an unload. */
struct _Link {
  LinkState          state;
  gboolean           closed;
  guint              busy;       /* inside its read callback: freed after */
  Listener          *listener;   /* NULL once the listener went */
  Component         *comp;       /* after a valid header */
  GSocketConnection *conn;
  GSocket           *sock;
  GSource           *read_src;
  GSource           *write_src;  /* while output waits */
  GSource           *timer;      /* the handshake deadline */
  MynaXmlStream     *xml;
  char              *id;
  char              *peer;       /* the remote address, for logs */
  GString           *out;        /* bytes waiting to be written */
  gsize              out_pos;
  gsize              max_buffer;
  char               buf[16384];
};

/* Every listener of this code, by key. */
static GHashTable *listeners;

static void
link_free (Link *link)
{
  g_clear_pointer (&link->xml, myna_xml_stream_free);
  g_clear_object (&link->conn);
  g_clear_object (&link->sock);
  g_string_free (link->out, TRUE);
  g_free (link->id);
  g_free (link->peer);
  g_free (link);
}

static void
source_drop (GSource **src)
{
  if (*src != NULL)
    {
      g_source_destroy (*src);
      g_clear_pointer (src, g_source_unref);
    }
}

/* Writes what the socket takes now; TRUE unless it failed. */
static gboolean
link_write_now (Link *link)
{
  while (link->out_pos < link->out->len)
    {
      g_autoptr(GError) error = NULL;
      gssize n = g_socket_send (link->sock, link->out->str + link->out_pos,
                                link->out->len - link->out_pos, NULL, &error);

      if (n < 0)
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            return TRUE;
          g_debug ("component: writing to %s: %s", link->peer, error->message);
          return FALSE;
        }
      link->out_pos += (gsize) n;
    }
  g_string_truncate (link->out, 0);
  link->out_pos = 0;
  return TRUE;
}

/* Ends @link: out of its lists, its sources gone, what is queued (a
 * stream error) written as far as the socket takes it at once, closed;
 * freed now, or after its read callback when inside it. */
static void
link_close (Link *link)
{
  if (link->closed)
    return;
  link->closed = TRUE;
  if (link->comp != NULL && link->comp->link == link)
    link->comp->link = NULL;
  if (link->listener != NULL)
    g_ptr_array_remove (link->listener->links, link);
  source_drop (&link->read_src);
  source_drop (&link->write_src);
  source_drop (&link->timer);
  link_write_now (link);
  g_socket_close (link->sock, NULL);
  if (link->busy == 0)
    link_free (link);
}

static gboolean
link_writable (GSocket *sock, GIOCondition cond, gpointer data)
{
  Link *link = data;

  if (!link_write_now (link))
    {
      link_close (link);
      return G_SOURCE_REMOVE;
    }
  if (link->out->len > 0)
    return G_SOURCE_CONTINUE;
  g_clear_pointer (&link->write_src, g_source_unref);
  return G_SOURCE_REMOVE;
}

/* Queues @len bytes of @data; past max_buffer unread the link ends
 * instead (resource-constraint). */
static void
link_send_len (Link *link, const char *data, gsize len)
{
  if (link->closed)
    return;
  if (link->out->len - link->out_pos + len > link->max_buffer)
    {
      g_message ("component %s: %zu bytes left unread by %s: disconnected",
                 link->comp != NULL ? link->comp->domain : "?",
                 link->out->len - link->out_pos, link->peer);
      g_string_truncate (link->out, 0);
      link->out_pos = 0;
      g_string_append (link->out, "<stream:error><resource-constraint xmlns='" NS_STANZAS
                                  "'/></stream:error></stream:stream>");
      link_close (link);
      return;
    }
  g_string_append_len (link->out, data, (gssize) len);
  if (link->write_src != NULL)
    return;
  if (!link_write_now (link))
    {
      link_close (link);
      return;
    }
  if (link->out->len > 0)
    {
      link->write_src = g_socket_create_source (link->sock, G_IO_OUT, NULL);
      g_source_set_callback (link->write_src, G_SOURCE_FUNC (link_writable), link, NULL);
      g_source_attach (link->write_src, NULL);
    }
}

static void
link_send (Link *link, const char *text)
{
  link_send_len (link, text, strlen (text));
}

/* Sends the stream error @condition (with @text) and ends the link.  The
 * stream header goes first when none was sent yet (RFC 6120 §4.9.1.1). */
static void
link_error (Link *link, const char *condition, const char *text)
{
  g_autoptr(GString) s = g_string_new (NULL);

  if (link->closed)
    return;
  g_message ("component %s: stream error %s to %s: %s",
             link->comp != NULL ? link->comp->domain : "?", condition, link->peer,
             text != NULL ? text : "");
  if (link->id == NULL)
    g_string_append (s, "<?xml version='1.0'?><stream:stream xmlns:stream='" NS_STREAMS
                        "' xmlns='" NS_COMPONENT "'>");
  g_string_append_printf (s, "<stream:error><%s xmlns='" NS_STANZAS "'/>", condition);
  if (text != NULL)
    {
      g_string_append (s, "<text xmlns='" NS_STANZAS "'>");
      myna_xml_escape_append (s, text, -1);
      g_string_append (s, "</text>");
    }
  g_string_append (s, "</stream:error></stream:stream>");
  link_send (link, s->str);
  link_close (link);
}

/* ---- from the process: the stream ---------------------------------------------- */

static Component *
listener_find (Listener *l, const char *domain)
{
  for (guint i = 0; domain != NULL && i < l->components->len; i++)
    {
      Component *c = l->components->pdata[i];
      if (g_ascii_strcasecmp (c->domain, domain) == 0)
        return c;
    }
  return NULL;
}

static void
link_stream_open (gpointer data, MynaStanza *header)
{
  Link *link = data;
  const char *to = myna_stanza_get_attr (header, "to");
  g_autofree char *reply = NULL;
  guint8 raw[16];

  if (link->state != LINK_HEADER)
    {
      link_error (link, "invalid-xml", "a second stream header");
      return;
    }
  if (g_strcmp0 (myna_xml_stream_get_default_ns (link->xml), NS_COMPONENT) != 0)
    {
      link_error (link, "invalid-namespace", "not a jabber:component:accept stream");
      return;
    }
  link->comp = link->listener != NULL ? listener_find (link->listener, to) : NULL;
  if (link->comp == NULL)
    {
      link_error (link, "host-unknown", "no component of that name here");
      return;
    }
  for (guint i = 0; i < G_N_ELEMENTS (raw); i++)
    raw[i] = (guint8) g_random_int_range (0, 256);
  link->id = g_base64_encode (raw, sizeof raw);
  reply = g_markup_printf_escaped ("<?xml version='1.0'?><stream:stream xmlns:stream='"
                                   NS_STREAMS "' xmlns='" NS_COMPONENT "' id='%s' from='%s'>",
                                   link->id, link->comp->domain);
  link->state = LINK_HANDSHAKE;
  link_send (link, reply);
}

/* Whether the handshake @text is the hex SHA-1 of the stream id and
 * @secret (compared in time independent of where they differ). */
static gboolean
handshake_ok (const char *id, const char *secret, const char *text)
{
  g_autofree char *joined = g_strconcat (id, secret, NULL);
  g_autofree char *want = g_compute_checksum_for_string (G_CHECKSUM_SHA1, joined, -1);
  g_autofree char *copy = g_strstrip (g_strdup (text));
  g_autofree char *got = g_ascii_strdown (copy, -1);
  guint8 diff = 0;

  if (strlen (got) != strlen (want))
    return FALSE;
  for (gsize i = 0; want[i] != '\0'; i++)
    diff |= (guint8) (want[i] ^ got[i]);
  return diff == 0;
}

/* A copy of @el with the jabber:component:accept namespace as
 * jabber:client, as the server's modules and clients expect stanzas.
 * Returns: (transfer full) */
static MynaStanza *
to_client_ns (const MynaStanza *el)
{
  const char *ns = myna_stanza_get_ns (el);
  MynaStanza *copy = myna_stanza_new (myna_stanza_get_name (el),
                                      g_strcmp0 (ns, NS_COMPONENT) == 0 ? MYNA_NS_CLIENT : ns);

  for (guint i = 0; i < myna_stanza_get_n_attrs (el); i++)
    {
      const char *ans, *name, *value;

      myna_stanza_get_attr_nth (el, i, &ans, &name, &value);
      myna_stanza_set_attr_ns (copy, ans, name, value);
    }
  for (guint i = 0; i < myna_stanza_get_n_children (el); i++)
    {
      MynaStanza *child = myna_stanza_get_child_nth (el, i);

      if (myna_stanza_is_text (child))
        myna_stanza_append_take (copy, myna_stanza_new_text (myna_stanza_get_text (child), -1));
      else
        myna_stanza_append_take (copy, to_client_ns (child));
    }
  return copy;
}

/* A stanza of the connected process: its `from` checked (or set to the
 * domain), routed as the server routes any stanza. */
static void
link_route (Link *link, MynaStanza *stanza)
{
  Component *comp = link->comp;
  g_autoptr(MynaStanza) st = to_client_ns (stanza);
  const char *from = myna_stanza_get_attr (st, "from");
  g_autoptr(MynaJid) jid = NULL;

  if (from == NULL)
    myna_stanza_set_attr (st, "from", comp->domain);
  else if ((jid = myna_jid_parse (from, NULL)) == NULL
           || g_ascii_strcasecmp (myna_jid_get_domain (jid), comp->domain) != 0)
    {
      link_error (link, "invalid-from", "a stanza from outside the component's domain");
      return;
    }
  else
    myna_stanza_set_attr (st, "from", myna_jid_to_string (jid));
  myna_server_route (myna_host_get_server (myna_module_get_host (comp->mod)), st);
}

static void
link_stanza (gpointer data, MynaStanza *stanza)
{
  Link *link = data;
  const char *name = myna_stanza_get_name (stanza);
  const char *ns = myna_stanza_get_ns (stanza);
  const ComponentConfig *cfg;

  if (link->closed)
    return;
  if (link->state == LINK_HANDSHAKE)
    {
      if (g_strcmp0 (name, "handshake") != 0 || g_strcmp0 (ns, NS_COMPONENT) != 0)
        {
          link_error (link, "not-authorized", "the handshake must come first");
          return;
        }
      cfg = myna_module_get_config (link->comp->mod);
      if (cfg->secret == NULL || *cfg->secret == '\0'
          || !handshake_ok (link->id, cfg->secret, myna_stanza_get_text (stanza)))
        {
          link_error (link, "not-authorized", "wrong handshake");
          return;
        }
      if (link->comp->link != NULL)
        {
          link_error (link, "conflict", "the component is connected already");
          return;
        }
      source_drop (&link->timer);
      if (link->listener != NULL)
        g_ptr_array_remove (link->listener->links, link);
      link->comp->link = link;
      link->state = LINK_OPEN;
      link_send (link, "<handshake/>");
      g_message ("component %s connected from %s", link->comp->domain, link->peer);
      return;
    }
  if (g_strcmp0 (ns, NS_COMPONENT) != 0
      || (g_strcmp0 (name, "message") != 0 && g_strcmp0 (name, "presence") != 0
          && g_strcmp0 (name, "iq") != 0))
    {
      link_error (link, "unsupported-stanza-type", name);
      return;
    }
  link_route (link, stanza);
}

static void
link_stream_close (gpointer data)
{
  Link *link = data;

  if (link->comp != NULL && link->comp->link == link)
    g_message ("component %s disconnected (stream closed by %s)", link->comp->domain,
               link->peer);
  link_send (link, "</stream:stream>");
  link_close (link);
}

static void
link_xml_error (gpointer data, const char *condition, const char *text)
{
  link_error (data, condition, text);
}

static const MynaXmlStreamCallbacks link_callbacks = {
  .stream_open  = link_stream_open,
  .stanza       = link_stanza,
  .stream_close = link_stream_close,
  .error        = link_xml_error,
};

static gboolean
link_readable (GSocket *sock, GIOCondition cond, gpointer data)
{
  Link *link = data;
  g_autoptr(GError) error = NULL;
  gssize n = g_socket_receive (sock, link->buf, sizeof link->buf, NULL, &error);

  if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    return G_SOURCE_CONTINUE;
  if (n <= 0)
    {
      if (link->comp != NULL && link->comp->link == link)
        g_message ("component %s disconnected (%s)", link->comp->domain,
                   n == 0 ? "connection closed" : error->message);
      link_close (link);
      return G_SOURCE_REMOVE;
    }
  link->busy++;
  myna_xml_stream_feed (link->xml, link->buf, (gsize) n, NULL);
  link->busy--;
  if (link->closed)
    {
      link_free (link);
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

static gboolean
link_handshake_timeout (gpointer data)
{
  Link *link = data;

  g_clear_pointer (&link->timer, g_source_unref);
  link_error (link, "connection-timeout", "no handshake in time");
  return G_SOURCE_REMOVE;
}

/* ---- the listener ------------------------------------------------------------------ */

static gboolean
listener_incoming (GSocketService *service, GSocketConnection *conn, GObject *source,
                   gpointer data)
{
  Listener *l = data;
  Link *link;
  g_autoptr(GSocketAddress) addr = g_socket_connection_get_remote_address (conn, NULL);
  const ComponentConfig *cfg;
  MynaXmlLimits limits = { 0 };

  if (l->components->len == 0)
    return FALSE;
  cfg = myna_module_get_config (((Component *) l->components->pdata[0])->mod);
  link = g_new0 (Link, 1);
  link->listener = l;
  link->conn = g_object_ref (conn);
  link->sock = g_object_ref (g_socket_connection_get_socket (conn));
  g_socket_set_blocking (link->sock, FALSE);
  link->out = g_string_new (NULL);
  link->max_buffer = (gsize) cfg->max_buffer;
  if (G_IS_INET_SOCKET_ADDRESS (addr))
    {
      g_autofree char *ip = g_inet_address_to_string (
          g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (addr)));
      link->peer = g_strdup_printf ("%s:%u", ip,
                                    g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (addr)));
    }
  else
    link->peer = g_strdup ("?");
  link->xml = myna_xml_stream_new (&link_callbacks, link);
  limits.max_stanza_size = (gsize) cfg->max_stanza_size;
  limits.max_depth = 32;
  limits.max_attrs = 64;
  myna_xml_stream_set_limits (link->xml, &limits);
  g_ptr_array_add (l->links, link);
  if (l->links->len > l->max_pending)
    {
      g_message ("component: %u connections waiting for their handshake: refusing %s",
                 l->links->len - 1, link->peer);
      link_error (link, "policy-violation", "too many connections waiting");
      return TRUE;
    }
  link->timer = g_timeout_source_new ((guint) cfg->handshake_timeout);
  g_source_set_callback (link->timer, link_handshake_timeout, link, NULL);
  g_source_attach (link->timer, NULL);
  link->read_src = g_socket_create_source (link->sock, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
  g_source_set_callback (link->read_src, G_SOURCE_FUNC (link_readable), link, NULL);
  g_source_attach (link->read_src, NULL);
  g_debug ("component: connection from %s", link->peer);
  return TRUE;
}

static void
listener_free (Listener *l)
{
  g_signal_handlers_disconnect_by_data (l->service, l);
  g_socket_service_stop (l->service);
  g_socket_listener_close (G_SOCKET_LISTENER (l->service));
  while (l->links->len > 0)
    {
      Link *link = l->links->pdata[0];
      link_error (link, "system-shutdown", NULL);   /* removes it from the list */
    }
  g_ptr_array_unref (l->links);
  g_ptr_array_unref (l->components);
  g_object_unref (l->service);
  g_free (l->key);
  g_free (l);
}

/* The listener on @cfg's address, opened when it is the first. */
static Listener *
listener_get (const ComponentConfig *cfg, GError **error)
{
  g_autofree char *key = g_strdup_printf ("%s %" G_GINT64_FORMAT, cfg->interface, cfg->port);
  Listener *l = listeners != NULL ? g_hash_table_lookup (listeners, key) : NULL;
  g_autoptr(GInetAddress) ip = NULL;
  g_autoptr(GSocketAddress) addr = NULL;
  g_autoptr(GSocketService) service = NULL;

  if (l != NULL)
    return l;
  ip = g_inet_address_new_from_string (cfg->interface);
  if (ip == NULL)
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED,
                   "component: interface %s is not an IP address", cfg->interface);
      return NULL;
    }
  addr = g_inet_socket_address_new (ip, (guint16) cfg->port);
  service = g_socket_service_new ();
  if (!g_socket_listener_add_address (G_SOCKET_LISTENER (service), addr, G_SOCKET_TYPE_STREAM,
                                      G_SOCKET_PROTOCOL_TCP, NULL, NULL, error))
    {
      g_prefix_error (error, "component: listening on %s: ", key);
      return NULL;
    }
  l = g_new0 (Listener, 1);
  l->key = g_steal_pointer (&key);
  l->service = g_steal_pointer (&service);
  l->components = g_ptr_array_new ();
  l->links = g_ptr_array_new ();
  l->max_pending = (gsize) cfg->max_pending;
  g_signal_connect (l->service, "incoming", G_CALLBACK (listener_incoming), l);
  g_socket_service_start (l->service);
  if (listeners == NULL)
    listeners = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                       (GDestroyNotify) listener_free);
  g_hash_table_insert (listeners, l->key, l);
  g_message ("component: listening on %s", l->key);
  return l;
}

/* ---- to the process: the domain's stanzas ---------------------------------------- */

/* Every stanza to the domain or a JID in it, while the process is
 * connected: written to it in jabber:component:accept. */
static MynaResult
component_forward (MynaCall *call, MynaStanza *stanza, gpointer data)
{
  Component *comp = data;
  g_autoptr(GString) s = NULL;

  if (comp->link == NULL || comp->link->state != LINK_OPEN)
    return MYNA_PASS;
  s = g_string_new (NULL);
  /* Serialised as in jabber:client, the stanza's own elements carry no
   * xmlns and so are in the stream's jabber:component:accept. */
  myna_stanza_serialize (stanza, MYNA_NS_CLIENT, s);
  link_send_len (comp->link, s->str, s->len);
  return MYNA_HANDLED;
}

static void
component_free (gpointer data)
{
  Component *comp = data;

  if (comp->link != NULL)
    link_error (comp->link, "system-shutdown", "the component module unloads");
  if (comp->listener != NULL)
    {
      g_ptr_array_remove (comp->listener->components, comp);
      if (comp->listener->components->len == 0)
        g_hash_table_remove (listeners, comp->listener->key);
      if (listeners != NULL && g_hash_table_size (listeners) == 0)
        g_clear_pointer (&listeners, g_hash_table_unref);
    }
  g_free (comp->domain);
  g_free (comp);
}

static gboolean
component_load (MynaModule *mod, GError **error)
{
  static const char *const events[] = {
    MYNA_EVENT_MESSAGE_HOST, MYNA_EVENT_MESSAGE_BARE, MYNA_EVENT_MESSAGE_FULL,
    MYNA_EVENT_PRESENCE_HOST, MYNA_EVENT_PRESENCE_BARE, MYNA_EVENT_PRESENCE_FULL,
    MYNA_EVENT_IQ_HOST, MYNA_EVENT_IQ_BARE, MYNA_EVENT_IQ_FULL,
  };
  const ComponentConfig *cfg = myna_module_get_config (mod);
  MynaHost *host = myna_module_get_host (mod);
  Component *comp;

  if (!myna_host_is_component (host))
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED,
                   "component: serves [component:DOMAIN] sections only, not host %s",
                   myna_host_get_name (host));
      return FALSE;
    }
  if (cfg->secret == NULL || strlen (cfg->secret) < 8)
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED,
                   "component: %s needs component.secret (8 characters at least)",
                   myna_host_get_name (host));
      return FALSE;
    }
  comp = g_new0 (Component, 1);
  comp->mod = mod;
  comp->domain = g_strdup (myna_host_get_name (host));
  myna_module_set_data (mod, comp, component_free);
  comp->listener = listener_get (cfg, error);
  if (comp->listener == NULL)
    return FALSE;
  g_ptr_array_add (comp->listener->components, comp);
  /* Late (1000): the core's own answers to the domain (disco's iq/host
   * hooks see a disco query first, as for any component) come first. */
  for (guint i = 0; i < G_N_ELEMENTS (events); i++)
    myna_module_hook (mod, events[i], 1000, component_forward, comp, NULL);
  return TRUE;
}

MYNA_MODULE_DEFINE (component,
  .version  = "1.0",
  .description = "external components (XEP-0114) serving a [component:] domain",
  .mode     = MYNA_MODULE_EAGER,
  .config   = MYNA_CONFIG_KEYS (
      MYNA_CONFIG_STRING (ComponentConfig, secret, "",
                          "the shared secret of the handshake (set it per component: "
                          "component.secret in the [component:] section)"),
      MYNA_CONFIG_STRING (ComponentConfig, interface, "127.0.0.1",
                          "the address the component listener binds"),
      MYNA_CONFIG_INT (ComponentConfig, port, "5347", 1, 65535,
                       "the component listener's port"),
      MYNA_CONFIG_SIZE (ComponentConfig, max_stanza_size, "1M", 1024, 64 * 1024 * 1024,
                        "the largest stanza a component may send"),
      MYNA_CONFIG_SIZE (ComponentConfig, max_buffer, "16M", 65536, 1024 * 1024 * 1024,
                        "output a component may leave unread before it is disconnected"),
      MYNA_CONFIG_DURATION (ComponentConfig, handshake_timeout, "30s", 100, 600000,
                            "how long a connection may take to handshake"),
      MYNA_CONFIG_INT (ComponentConfig, max_pending, "64", 1, 10000,
                       "connections waiting for their handshake at once")),
  .config_size = sizeof (ComponentConfig),
  .load     = component_load);
