/* api.h: the JSON bodies of the HTTP API — parsed strictly, bounded, and
 * turned into stanzas — for the REST module and anything else that takes
 * JSON from the network.
 *
 * A body must be one JSON object (RFC 8259, checked by a strict lexer
 * before json-glib builds the tree: no comments, no single quotes, no
 * trailing commas, no raw control characters, no \u0000, no lone
 * surrogates, nesting at most MYNA_API_MAX_DEPTH), valid UTF-8, at most
 * MYNA_API_MAX_BODY bytes, with no member named twice.  Members a parser
 * does not know are ignored; known ones must have their type (a string;
 * null counts as absent for optional members) and length, and text that
 * goes into XML must be made of XML characters.  JIDs are parsed and
 * normalised with myna_jid_parse().
 *
 * Free of server state: built into the protocol library with the other
 * parsers of network bytes, and fuzzed (tests/fuzz/fuzz-api-body.c). */
#pragma once

#include <glib.h>
#include <myna/jid.h>
#include <myna/stanza.h>

G_BEGIN_DECLS

/* Largest body a parser accepts, in bytes. */
#define MYNA_API_MAX_BODY      (64 * 1024)
/* Deepest nesting of arrays and objects, the top-level object counting 1. */
#define MYNA_API_MAX_DEPTH     16
/* Longest message body and subject, in bytes. */
#define MYNA_API_MAX_TEXT      (48 * 1024)
#define MYNA_API_MAX_SUBJECT   1024
/* Longest JID text, in bytes (three parts of 1023 and two separators). */
#define MYNA_API_MAX_JID       3071
/* Longest password, in bytes. */
#define MYNA_API_MAX_PASSWORD  1023

/* Notifications: most recipients named in one body, longest title and
 * URI in bytes, longest ttl in seconds (30 days). */
#define MYNA_API_MAX_RECIPIENTS 1000
#define MYNA_API_MAX_TITLE      1024
#define MYNA_API_MAX_URI        2048
#define MYNA_API_MAX_TTL        (30 * 24 * 3600)

#define MYNA_API_ERROR (myna_api_error_quark ())
GQuark myna_api_error_quark (void);

typedef enum {
  MYNA_API_ERROR_FAILED,
  MYNA_API_ERROR_SYNTAX,      /* not JSON, or JSON this API refuses */
  MYNA_API_ERROR_NOT_OBJECT,  /* valid JSON, but not an object */
  MYNA_API_ERROR_TOO_LARGE,   /* the body, or a member, is too long */
  MYNA_API_ERROR_BAD_UTF8,
  MYNA_API_ERROR_MISSING,     /* a required member is absent */
  MYNA_API_ERROR_TYPE,        /* a member of the wrong JSON type */
  MYNA_API_ERROR_INVALID,     /* a member whose value is refused */
  MYNA_API_ERROR_DUPLICATE,   /* a member named twice */
} MynaApiError;

/* POST /api/v1/message: {"from": JID?, "to": JID, "type": "chat" |
 * "normal" | "headline"?, "body": string, "subject": string?} */
typedef struct {
  MynaJid    *from;      /* NULL when absent */
  MynaJid    *to;
  const char *type;      /* "chat" (the default), "normal" or "headline"; static */
  char       *body;      /* 1..MYNA_API_MAX_TEXT bytes of XML characters */
  char       *subject;   /* NULL when absent */
} MynaApiMessage;

/* POST /api/v1/users: {"user": localpart, "host": domain?, "password": string} */
typedef struct {
  char *user;            /* normalised localpart */
  char *host;            /* normalised domain, NULL when absent */
  char *password;        /* 1..MYNA_API_MAX_PASSWORD bytes, no control characters */
} MynaApiUser;

/* POST /api/v1/notifications: {"to": JID | [JID, …] | "*", "title":
 * string, "message": string, "uri": string?, "ttl": seconds?} */
typedef struct {
  gboolean    broadcast; /* "to" was "*": every account of the host */
  GPtrArray  *to;        /* bare JIDs of accounts (MynaJid*), 1..MYNA_API_MAX_RECIPIENTS,
                          * each once, in the body's order; NULL for a broadcast */
  char       *title;     /* 1..MYNA_API_MAX_TITLE bytes of XML characters */
  char       *message;   /* 1..MYNA_API_MAX_TEXT bytes of XML characters */
  char       *uri;       /* ..MYNA_API_MAX_URI bytes, NULL when absent */
  gint64      ttl;       /* 1..MYNA_API_MAX_TTL seconds, 0 when absent */
} MynaApiNotification;

/* POST /api/v1/muc/rooms: {"room": localpart | "room@service", "service":
 * domain?, "owner": JID?, "persistent": boolean?, "public": boolean?,
 * "name": string?} */
typedef struct {
  char       *room;       /* nodeprepped localpart */
  char       *service;    /* normalised domain: "service", or the domain of
                           * a "room" JID (they must agree); NULL when neither */
  MynaJid    *owner;      /* bare JID with a localpart, NULL when absent */
  int         persistent; /* -1 when absent, else 0 or 1 */
  int         public_room; /* "public": -1 when absent, else 0 or 1 */
  char       *name;       /* ..MYNA_API_MAX_SUBJECT bytes of XML characters, NULL when absent */
} MynaApiMucRoom;

/* Parses a message body into *@out (cleared first; clear it with
 * myna_api_message_clear()).  FALSE with a MYNA_API_ERROR on any fault,
 * leaving *@out cleared. */
gboolean    myna_api_parse_message (const char *body, gsize len,
                                    MynaApiMessage *out, GError **error);
void        myna_api_message_clear (MynaApiMessage *msg);

/* Parses a user creation body into *@out, as above.  myna_api_user_clear()
 * zeroes the copy of the password it frees (the request body and the
 * parser's own transient copy are not this API's to wipe). */
gboolean    myna_api_parse_user (const char *body, gsize len,
                                 MynaApiUser *out, GError **error);
void        myna_api_user_clear (MynaApiUser *user);

/* Parses a notification body into *@out, as above ("to" a JID with a
 * localpart and no resource, or an array of such, duplicates counted
 * once; "ttl" an integer).  Clear it with myna_api_notification_clear(). */
gboolean    myna_api_parse_notification (const char *body, gsize len,
                                         MynaApiNotification *out, GError **error);
void        myna_api_notification_clear (MynaApiNotification *n);

/* Parses a room creation body into *@out, as above ("room" a JID must have
 * a localpart and no resource).  Clear it with myna_api_muc_room_clear(). */
gboolean    myna_api_parse_muc_room (const char *body, gsize len,
                                     MynaApiMucRoom *out, GError **error);
void        myna_api_muc_room_clear (MynaApiMucRoom *room);

/* The <message/> for @msg: from @msg->from, or @default_from when that is
 * NULL; @id may be NULL.  Returns: (transfer full) */
MynaStanza *myna_api_message_to_stanza (const MynaApiMessage *msg,
                                        const MynaJid *default_from,
                                        const char *id);

/* Whether @text (valid UTF-8) is made only of characters XML 1.0 allows. */
gboolean    myna_api_text_is_xml (const char *text);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (MynaApiMessage, myna_api_message_clear)
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (MynaApiUser, myna_api_user_clear)
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (MynaApiNotification, myna_api_notification_clear)
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (MynaApiMucRoom, myna_api_muc_room_clear)

G_END_DECLS
