/* server.h: what a module sees of the running server — hosts, sessions,
 * stanza routing and delivery, hooks and their events.
 *
 * Everything here runs on the server's main loop thread; nothing takes a
 * lock.  Stanzas passed to handlers are borrowed. */
#pragma once

#include <glib.h>
#include <myna/stanza.h>
#include <myna/jid.h>
#include <myna/storage.h>

G_BEGIN_DECLS

typedef struct _MynaServer  MynaServer;
typedef struct _MynaHost    MynaHost;
typedef struct _MynaSession MynaSession;
typedef struct _MynaCall    MynaCall;

/* What a handler or hook answers. */
typedef enum {
  MYNA_PASS = 0,     /* not mine: the next handler runs */
  MYNA_HANDLED = 1,  /* done: the chain stops */
} MynaResult;

/* ---- Events ------------------------------------------------------------
 * Stanza events are "<kind>/<target>": kind is message, presence or iq;
 * target is "host" (to the server's own domain), "bare" (to a bare JID of
 * this host) or "full" (to a full JID of this host).  Build them with
 * myna_event_for_stanza(); never spell them by hand. */
#define MYNA_EVENT_MESSAGE_HOST  "message/host"
#define MYNA_EVENT_MESSAGE_BARE  "message/bare"
#define MYNA_EVENT_MESSAGE_FULL  "message/full"
#define MYNA_EVENT_PRESENCE_HOST "presence/host"
#define MYNA_EVENT_PRESENCE_BARE "presence/bare"
#define MYNA_EVENT_PRESENCE_FULL "presence/full"
#define MYNA_EVENT_IQ_HOST       "iq/host"
#define MYNA_EVENT_IQ_BARE       "iq/bare"
#define MYNA_EVENT_IQ_FULL       "iq/full"
/* Session lifecycle (the stanza argument is NULL). */
#define MYNA_EVENT_SESSION_AUTHENTICATED "session/authenticated"
#define MYNA_EVENT_SESSION_BOUND         "session/bound"
#define MYNA_EVENT_SESSION_CLOSED        "session/closed"
/* Fired when a bound session's connection ends without the client's
 * </stream:stream> (end of file, a read error, the output budget's cut, a
 * drain deadline): a handler answering HANDLED keeps the session
 * hibernated (myna_session_is_hibernated) instead of closing it: its
 * transport is freed, it stays registered and bound with its presence,
 * until myna_session_resume() gives it a connection again or
 * myna_session_close() ends it (session/closed fires then).  With no
 * handler answering HANDLED the session closes as before.  A clean close
 * by the client and a stream error the server sends do not fire it. */
#define MYNA_EVENT_SESSION_TRANSPORT_LOST "session/transport-lost"
/* A stanza sent by a client of this host, before routing (any kind). */
#define MYNA_EVENT_STANZA_FROM_CLIENT    "stanza/from-client"
/* A stanza (message, presence or iq) about to be written to a bound
 * session (the call's session; its from and to are that session's JID):
 * fired by myna_session_send() and by myna_server_deliver() (routed
 * messages, presence and iqs), for each recipient session, before it is
 * serialised.  A handler answering HANDLED takes it over (it must
 * ref the stanza to keep it): the core writes nothing.  Client State
 * Indication holds stanzas back here, stream management counts and keeps
 * the ones it lets through (the lowest priority).  A handler sending the
 * stanza again with myna_session_send() runs this chain again: it knows
 * its own stanzas by a flag of its own.  Stream-level elements (<a/>,
 * SASL, features) do not pass here. */
#define MYNA_EVENT_STANZA_TO_CLIENT      "stanza/to-client"
/* Fired by the presence module when a session sends its initial presence
 * (the stanza is that presence): offline delivery hooks it. */
#define MYNA_EVENT_PRESENCE_INITIAL      "presence/initial"
/* Fired by the presence module when a session goes unavailable. */
#define MYNA_EVENT_PRESENCE_UNAVAILABLE  "presence/unavailable"
/* Fired when an account is deleted (stanza NULL; call's from is the bare
 * JID): modules drop what they keep for it.  Fired on the account's host,
 * then on every component domain (whose modules keep per-JID state too:
 * pubsub subscriptions and affiliations), by myna_host_account_deleted. */
#define MYNA_EVENT_ACCOUNT_DELETED       "account/deleted"
/* Fired by a module about to hand a stanza it kept for later (an offline
 * message, a pending subscription request) to a session: the call is
 * myna_call_new (host, recipient's session), the stanza the kept one with
 * its original `from`.  A handler answering HANDLED withholds it (the
 * blocking module does, for a sender blocked since); the firing module
 * then drops it. */
#define MYNA_EVENT_STORED_DELIVER        "stored/deliver"

typedef enum {
  MYNA_TARGET_HOST,
  MYNA_TARGET_BARE,
  MYNA_TARGET_FULL,
} MynaTarget;

/* The interned event name for @kind ("message", "presence", "iq") and
 * @target, or NULL for an unknown kind. */
const char *myna_event_for_stanza (const char *kind, MynaTarget target);

/* ---- Hosts --------------------------------------------------------------- */

const char  *myna_host_get_name (MynaHost *host);
MynaServer  *myna_host_get_server (MynaHost *host);
/* Disco#info features registered on this host, sorted.
 * Returns: (transfer container) array of borrowed strings */
GPtrArray   *myna_host_get_features (MynaHost *host);
/* Disco#info features the server offers on behalf of this host's
 * accounts (answered at an account's bare JID), sorted.
 * Returns: (transfer container) array of borrowed strings */
GPtrArray   *myna_host_get_account_features (MynaHost *host);
/* Whether this is a domain served by a module ([component:DOMAIN] in the
 * configuration): no accounts, no client sessions; every stanza to it or
 * to a JID in it goes to its modules' routes and hooks. */
gboolean     myna_host_is_component (MynaHost *host);

/* ---- Disco registrations (XEP-0030, XEP-0128) ----------------------------
 * What modules registered with myna_module_add_identity(),
 * myna_module_add_disco_item() and myna_module_add_disco_extension(); the
 * disco module answers with them.  Pointers are borrowed: valid until the
 * handler returns (an unload removes them). */
typedef struct {
  const char *category;
  const char *type;
  const char *name;       /* nullable */
} MynaDiscoIdentity;

typedef struct {
  const char *jid;
  const char *node;       /* nullable */
  const char *name;       /* nullable */
} MynaDiscoItem;

/* Identities of the host, sorted by category, type and name, without
 * duplicates.  Returns: (transfer container) of const MynaDiscoIdentity* */
GPtrArray   *myna_host_get_identities (MynaHost *host);
/* Identities modules registered for the host's accounts
 * (myna_module_add_account_identity), sorted, without duplicates; not
 * account/registered, which the disco module adds.
 * Returns: (transfer container) of const MynaDiscoIdentity* */
GPtrArray   *myna_host_get_account_identities (MynaHost *host);
/* Items of the host (disco#items on its domain), sorted by JID and node,
 * without duplicates; a main host's include the components served
 * under it (see docs/modules.md, "Serving a domain").
 * Returns: (transfer container) of const MynaDiscoItem* */
GPtrArray   *myna_host_get_disco_items (MynaHost *host);
/* XEP-0128 extension forms (<x xmlns='jabber:x:data' type='result'/>),
 * one per FORM_TYPE, sorted by FORM_TYPE.
 * Returns: (transfer container) of borrowed MynaStanza* */
GPtrArray   *myna_host_get_disco_extensions (MynaHost *host);
/* Fills a disco#info answer's @query: an <identity/> per entry of
 * @identities (const MynaDiscoIdentity*), a <feature var/> per string of
 * @features, then each XEP-0128 form of @forms (MynaStanza*, shared, not
 * copied), in the arrays' order; each array nullable.  For the disco
 * module, and any module answering disco for a JID or node it serves:
 *   g_autoptr(MynaStanza) r = myna_stanza_build_result (iq,
 *       "<query xmlns='http://jabber.org/protocol/disco#info'/>");
 *   myna_disco_info_fill (myna_stanza_first_element (r), ids, features, NULL); */
void         myna_disco_info_fill (MynaStanza *query, GPtrArray *identities,
                                   GPtrArray *features, GPtrArray *forms);
/* Fills a disco#items answer's @query: an <item jid node? name?/> per
 * entry of @items (const MynaDiscoItem*, nullable), in its order. */
void         myna_disco_items_fill (MynaStanza *query, GPtrArray *items);

/* Connected sessions of account @local on this host (bound ones only).
 * Returns: (transfer container) array of borrowed MynaSession* */
GPtrArray   *myna_host_get_sessions (MynaHost *host, const char *local);
/* The bound session of this host whose full JID is @full, or NULL.
 * Returns: (transfer none) (nullable) */
MynaSession *myna_host_find_session (MynaHost *host, MynaJid *full);
/* Every bound session of this host, in no particular order.
 * Returns: (transfer container) array of borrowed MynaSession* */
GPtrArray   *myna_host_list_sessions (MynaHost *host);

/* Runs the hook chain of @event on @host (for events modules define or
 * fire themselves).  Returns MYNA_HANDLED if a handler handled it. */
MynaResult   myna_host_fire_event (MynaHost *host, const char *event,
                                   MynaCall *call, MynaStanza *stanza);
/* Tells the modules that account @bare (its bare JID, or a full JID of
 * it) of @host is being deleted: MYNA_EVENT_ACCOUNT_DELETED on @host, then
 * on each component domain, each with myna_call_new_for (that host, bare
 * JID).  Whoever deletes an account (mynactl, in-band registration, the
 * HTTP API) calls it before myna_account_delete. */
void         myna_host_account_deleted (MynaHost *host, MynaJid *bare);
/* A call for stanzas the server itself originates on @host (from the
 * host's JID, no session).  Free with myna_call_free(). */
MynaCall    *myna_call_new (MynaHost *host, MynaSession *session);
/* A call on @host whose sender is @from (for example an account's bare
 * JID in MYNA_EVENT_ACCOUNT_DELETED). */
MynaCall    *myna_call_new_for (MynaHost *host, MynaJid *from);
void         myna_call_free (MynaCall *call);

/* Looks a local virtual host up by domain.  Returns: (transfer none) */
MynaHost    *myna_server_get_host (MynaServer *server, const char *domain);

/* ---- Sessions ------------------------------------------------------------ */

MynaHost    *myna_session_get_host (MynaSession *session);
/* The full JID once bound, the bare JID once authenticated, else NULL.
 * Returns: (transfer none) */
MynaJid     *myna_session_get_jid (MynaSession *session);
gboolean     myna_session_is_authenticated (MynaSession *session);
gboolean     myna_session_is_secure (MynaSession *session);
/* FALSE once the session is closing: asynchronous work finishing late
 * should then do nothing more with it. */
gboolean     myna_session_is_open (MynaSession *session);
/* Whether the session is hibernated: bound, its connection gone, kept by
 * stream management (XEP-0198) until the client resumes it or its window
 * ends.  It still receives stanzas (a module of MYNA_EVENT_STANZA_TO_CLIENT
 * keeps them; those no module takes are dropped) and counts as bound,
 * but nobody reads: a module pushing a notification treats it as
 * offline. */
gboolean     myna_session_is_hibernated (MynaSession *session);
/* Stream resumption (XEP-0198): @fresh, an authenticated session not yet
 * bound whose account is @old's, hands its connection (socket, TLS, XML
 * stream, output queue) to @old, which is hibernated or still connected
 * (its other connection is then closed).  @old is no longer hibernated and
 * keeps everything else (JID, presence, module data); @fresh goes away
 * without session/closed.  Safe from inside a handler of a stream element
 * of @fresh: what follows on the wire is parsed as @old's.  FALSE with
 * @error (G_IO_ERROR) when the two do not fit. */
gboolean     myna_session_resume (MynaSession *old, MynaSession *fresh, GError **error);
/* The connection of @session is judged dead (no answer to a keepalive):
 * a bound session is offered to MYNA_EVENT_SESSION_TRANSPORT_LOST and
 * hibernated when a handler keeps it; otherwise, as when called from a
 * handler of the session's own stanzas, it is closed with @condition and
 * @text as myna_session_close() does. */
void         myna_session_lose_transport (MynaSession *session, const char *condition,
                                          const char *text);
/* Stanzas (message, presence, iq) the client has sent on this session
 * since it started, including those sent before a resumption; stream
 * management counts from it (XEP-0198 `h`, modulo 2^32). */
guint64      myna_session_get_stanzas_received (MynaSession *session);
/* Presence priority (-128..127), 0 until initial presence. */
int          myna_session_get_priority (MynaSession *session);
void         myna_session_set_priority (MynaSession *session, int priority);
/* Whether the session has sent available presence (is "available"). */
gboolean     myna_session_is_available (MynaSession *session);
void         myna_session_set_available (MynaSession *session, gboolean available);
/* The peer's address for logs and limits, "ip:port". */
const char  *myna_session_get_peer (MynaSession *session);
/* When bytes last arrived from the client (g_get_monotonic_time). */
gint64       myna_session_get_last_activity (MynaSession *session);
/* The peer's IP address alone. */
const char  *myna_session_get_ip (MynaSession *session);

/* Sends @stanza to this session's client; borrowed. */
void         myna_session_send (MynaSession *session, MynaStanza *stanza);
/* Bytes queued to this session's client and not yet written. */
gsize        myna_session_get_output_pending (MynaSession *session);
typedef void (*MynaSessionDrainFunc) (MynaSession *session, gpointer user_data);
/* Calls @func once, from the main loop (never from inside this call nor
 * any other call into the core), when the session's queued output is down
 * to @low_water bytes or less, then
 * @destroy on @user_data: a module sending much to one client (stored
 * items, a backlog) sends a few, then waits for the client to read them.
 * When the session closes first, or the module that registered it
 * unloads, only @destroy runs. */
void         myna_session_when_drained (MynaSession *session, gsize low_water,
                                        MynaSessionDrainFunc func, gpointer user_data,
                                        GDestroyNotify destroy);
/* The next stanza for myna_session_send_paced to send, or NULL when there
 * is no more.  Returns: (transfer full) (nullable) */
typedef MynaStanza *(*MynaSessionPacedFunc) (MynaSession *session, gpointer user_data);
/* Sends @session the stanzas @next returns, in batches at the pace its
 * client reads them: a batch is at most @batch stanzas (0: no limit) and
 * ends early once @high_water bytes are queued (0: no limit); the next
 * batch goes when the queue is down to @low_water bytes
 * (myna_session_when_drained).  The first batch goes from inside this
 * call.  When @next returns NULL, or the session closes, or the module
 * that called this unloads (a reload too), sending stops and @destroy
 * runs on @user_data, once.  @next is called only while the session is
 * open, and what it returns is always sent.  To go on after a reload,
 * keep the position in session data freed by GLib and call this again
 * from `attach`.
 * Returns: TRUE when it waits for the client to read (@user_data is still
 * alive), FALSE when it ended inside this call (@destroy ran) */
gboolean     myna_session_send_paced (MynaSession *session, guint batch, gsize high_water,
                                      gsize low_water, MynaSessionPacedFunc next,
                                      gpointer user_data, GDestroyNotify destroy);
/* Ends the session with a stream error (@condition from RFC 6120 §4.9.3;
 * @text may be NULL). */
void         myna_session_close (MynaSession *session, const char *condition,
                                 const char *text);
/* The same with an application-specific condition (RFC 6120 §4.9.4):
 * @application (borrowed; its own namespace) follows the text, e.g.
 * XEP-0198's <handled-count-too-high xmlns='urn:xmpp:sm:3' h send-count/>. */
void         myna_session_close_with (MynaSession *session, const char *condition,
                                      const char *text, MynaStanza *application);

/* Per-session data for modules, keyed by an interned string, in the
 * namespace of the module whose code runs (its name prefixes the key; a
 * service call runs in the provider's): a module reaches only its own
 * data by name, another's through that module's service.  When the
 * module that set it unloads, data whose @destroy is a function of that
 * module's .so is removed from the session (@destroy runs then); data with
 * a @destroy from elsewhere (g_free, g_object_unref, myna_stanza_unref…)
 * stays with the session, across a reload too. */
void         myna_session_set_data (MynaSession *session, const char *key,
                                    gpointer data, GDestroyNotify destroy);
gpointer     myna_session_get_data (MynaSession *session, const char *key);

/* ---- Routing and delivery ------------------------------------------------ */

/* Routes @stanza as the server would route one that arrived from its
 * `from`: through hooks and IQ routes to local delivery.  Borrowed. */
void         myna_server_route (MynaServer *server, MynaStanza *stanza);
/* Delivers @stanza to the session(s) of its `to` without running the
 * message/presence hooks again (the final step of routing): a full JID goes
 * to that resource; a bare JID follows RFC 6121 §8.5.  Returns the number
 * of sessions that got it. */
guint        myna_server_deliver (MynaServer *server, MynaStanza *stanza);
/* Delivers @stanza (its `to`, if any, is ignored) to each JID of @to
 * (MynaJid*), serialised once: a session of this server whose full JID
 * is in @to gets those bytes with its own to='…' spliced into the start
 * tag, after the inbound hooks of its host (MYNA_EVENT_MESSAGE_FULL or
 * MYNA_EVENT_PRESENCE_FULL, as routing runs them: one answering HANDLED
 * keeps it from that session; one editing its top level gets that
 * recipient its own serialisation) and MYNA_EVENT_STANZA_TO_CLIENT ran
 * for it on a stanza whose `to` is that JID.  That stanza is the call's own top element sharing its
 * children with the other recipients': a handler may keep it by
 * reference (the next recipient then gets a new top element) and edit
 * its top level, but must copy before editing a child.  A full JID of an
 * account host of this server with no bound session gets nothing and is
 * added to @unavailable (nullable; the pointers are @to's) so that the
 * caller may drop it; any other JID (a component's, another server's, a
 * bare JID), and any iq, gets a copy routed as by myna_server_route().  Counts
 * stanzas_out as myna_server_deliver() does.  For fan-out: multi-user
 * chat rooms, publish-subscribe.
 * Returns: the number of local sessions @stanza was handed to */
guint        myna_server_fanout (MynaServer *server, MynaStanza *stanza, GPtrArray *to,
                                 GPtrArray *unavailable);
/* How many sessions myna_server_deliver() would hand @stanza to now,
 * without sending it: 0 means no resource would get it (a module storing
 * it for later, or pushing a notification, takes over). */
guint        myna_server_count_recipients (MynaServer *server, MynaStanza *stanza);

/* ---- Calls: the context of a stanza being handled ------------------------ */

MynaServer  *myna_call_get_server (MynaCall *call);
MynaHost    *myna_call_get_host (MynaCall *call);
/* The client session the stanza came from, or NULL (internal or remote). */
MynaSession *myna_call_get_session (MynaCall *call);
/* The stamped sender and the (defaulted) recipient.  Returns: (transfer none) */
MynaJid     *myna_call_get_from (MynaCall *call);
MynaJid     *myna_call_get_to (MynaCall *call);
/* Sends @stanza back to the sender of the call's stanza; borrowed. */
void         myna_call_send (MynaCall *call, MynaStanza *stanza);
/* Answers the call's iq with an empty result. */
void         myna_call_reply_result (MynaCall *call, MynaStanza *iq);
/* Answers the call's @iq with a result carrying @payload_format's
 * elements, built as by myna_stanza_build_result():
 *   myna_call_reply (call, iq, "<query xmlns='jabber:iq:version'>"
 *                    "<name>%s</name></query>", name);
 * A malformed payload template (a bug: logged as critical) answers
 * internal-server-error instead, so the client still gets a reply. */
void         myna_call_reply (MynaCall *call, MynaStanza *iq,
                              const char *payload_format, ...) G_GNUC_PRINTF (3, 4);
/* Answers with a stanza error built from the call's stanza. */
void         myna_call_reply_error (MynaCall *call, MynaStanza *stanza,
                                    MynaErrorType type, const char *condition,
                                    const char *text);

G_END_DECLS
