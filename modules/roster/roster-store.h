/* roster-store.h: the roster storage format, internal to the roster
 * module.  Other modules read rosters through the roster/1 service
 * (<myna/roster.h>), which roster.c provides from these functions.
 *
 * Storage (key–value, per user of a host, in the roster module's own
 * namespace: stored as "roster/roster", …):
 *
 *   store "roster", key = the contact's JID (normalised, usually bare),
 *   value = one serialised roster item in the jabber:iq:roster namespace,
 *   with the RFC 6121 attributes and Myna's private state in one child:
 *
 *     <item xmlns='jabber:iq:roster' jid='juliet@example.com'
 *           name='Juliet' subscription='from' ask='subscribe'
 *           approved='true'>
 *       <group>Friends</group>
 *       <state xmlns='urn:myna:roster:0' pending-in='true' hidden='true'>
 *         <presence xmlns='jabber:client' type='subscribe'
 *                   from='juliet@example.com' to='romeo@example.net'/>
 *       </state>
 *     </item>
 *
 *   - subscription: none | to | from | both (absent means none);
 *   - ask='subscribe': pending out (the user asked, no answer yet);
 *   - approved='true': the user pre-approved a subscription request;
 *   - <state/> (never shown to clients): pending-in='true' while an
 *     inbound request waits for an answer, with that request inside so it
 *     can be redelivered (trimmed: see roster_request_trim()); the user
 *     clears it by answering (subscribed or unsubscribed) or by removing
 *     the item; hidden='true' while the item exists only because
 *     of such a request (RFC 6121: "None + Pending In" items are not pushed
 *     or delivered to the user).
 *
 *   store "roster-version", key "current" = the account's roster version,
 *   a decimal counter raised on each change a client can see (XEP-0237).
 *
 *   store "roster-count", key "items" = how many items the "roster" store
 *   holds (hidden ones included), so the roster module checks its
 *   `max_items` without reading the roster.  Written with each item
 *   created or deleted; counted from the roster when absent, and put
 *   right whenever the whole roster is read (a login).
 *
 * While an account has bound sessions, its parsed roster is cached in
 * each session's data under ROSTER_CACHE_KEY (the roster module's key) (one shared GHashTable of
 * contact JID → MynaStanza <item/>); writes through roster_store_put()
 * keep it current.  Everything in the cache is freed by GLib and libmyna
 * functions only, so it outlives an unloaded module safely. */
#pragma once

#include <myna/module.h>
#include <myna/roster.h>
#include <myna/xmlstream.h>

G_BEGIN_DECLS

#define ROSTER_NS            "jabber:iq:roster"
#define ROSTER_NS_STATE      "urn:myna:roster:0"
#define ROSTER_STORE         "roster"
#define ROSTER_VERSION_STORE "roster-version"
#define ROSTER_VERSION_KEY   "current"
#define ROSTER_COUNT_STORE   "roster-count"
#define ROSTER_COUNT_KEY     "items"
/* Session data key of the cached roster (in the roster module's
 * namespace). */
#define ROSTER_CACHE_KEY     "roster-cache"

/* The subscription state of one item: <myna/roster.h>'s. */
typedef MynaRosterSub   RosterSub;
typedef MynaRosterState RosterState;
#define ROSTER_SUB_NONE MYNA_ROSTER_SUB_NONE
#define ROSTER_SUB_TO   MYNA_ROSTER_SUB_TO
#define ROSTER_SUB_FROM MYNA_ROSTER_SUB_FROM
#define ROSTER_SUB_BOTH MYNA_ROSTER_SUB_BOTH

/* The roster module's storage (its view), set by its first load.
 * Returns: (transfer none) */
MynaStorage *roster_store_storage (void);
void         roster_store_set_storage (MynaStorage *storage);

/* The roster of @user: contact JID → <item/> (MynaStanza*, never to be
 * modified: copy, change, then roster_store_put()).
 * Returns: (transfer full) a GHashTable reference */
GHashTable *roster_store_load (MynaHost *host, const char *user);
/* The roster of @session's account, from its own cached copy first: a
 * session that is closing is no longer among the account's sessions, and
 * its last broadcast would otherwise read the roster from storage again.
 * Returns: (transfer full) a GHashTable reference */
GHashTable *roster_store_load_for (MynaSession *session);
/* One item, or NULL.  Returns: (transfer full) */
MynaStanza *roster_store_get (MynaHost *host, const char *user,
                              const char *contact);
/* Stores @item (borrowed; NULL deletes) for @contact of @user. */
void        roster_store_put (MynaHost *host, const char *user,
                              const char *contact, MynaStanza *item);
/* The same, with @done called once the write is durable (or failed);
 * @done NULL logs a failure only. */
void        roster_store_put_full (MynaHost *host, const char *user,
                                   const char *contact, MynaStanza *item,
                                   MynaStorageDone done, gpointer data);
/* How many items @user has stored, hidden ones included: the size of the
 * cached roster while the account has one, else the stored count (the
 * roster is counted once when there is none).  No item is read. */
guint       roster_store_count (MynaHost *host, const char *user);
/* Notes that @user's roster gains (@delta 1) or loses (-1) an item; call
 * it before the roster_store_put_full() that creates or deletes the item.
 * @done as for roster_store_put_full. */
void        roster_store_count_add (MynaHost *host, const char *user, int delta,
                                    MynaStorageDone done, gpointer data);
/* The current version ("0" before any change).  Returns: (transfer full) */
char       *roster_store_get_version (MynaHost *host, const char *user);
/* Raises the version.  Returns: (transfer full) the new one */
char       *roster_store_bump_version (MynaHost *host, const char *user);
/* The same, with @done as for roster_store_put_full. */
char       *roster_store_bump_version_full (MynaHost *host, const char *user,
                                            MynaStorageDone done, gpointer data);

/* A new item for @contact: subscription none, nothing pending.
 * Returns: (transfer full) */
MynaStanza *roster_item_new (const char *contact);
void        roster_item_get_state (const MynaStanza *item, RosterState *state);
/* Writes @state into @item (which must be the caller's own copy); keeps
 * the stored request only while pending in. */
void        roster_item_set_state (MynaStanza *item, const RosterState *state);
/* The stored inbound subscription request, or NULL.
 * Returns: (transfer none) */
MynaStanza *roster_item_get_request (const MynaStanza *item);
/* What of an inbound subscription request is stored and redelivered:
 * its addresses and type (RFC 6121 §3.1.2), a <status/> cut to
 * ROSTER_REQUEST_MAX_STATUS bytes and the XEP-0172 <nick/> cut to
 * ROSTER_REQUEST_MAX_NICK bytes; nothing else of what the sender put in
 * (a request of any size then costs its user little at each login).
 * Returns: (transfer full) */
#define ROSTER_REQUEST_MAX_STATUS 1024
#define ROSTER_REQUEST_MAX_NICK   256
#define ROSTER_NS_NICK            "http://jabber.org/protocol/nick"
MynaStanza *roster_request_trim (const MynaStanza *request);
/* Keeps @request, trimmed, as the pending inbound request. */
void        roster_item_set_request (MynaStanza *item, MynaStanza *request);
/* The item as a client sees it (no private state), or NULL when hidden.
 * Returns: (transfer full) (nullable) */
MynaStanza *roster_item_for_client (const MynaStanza *item);

G_END_DECLS
