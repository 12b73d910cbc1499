/* muc.h: the muc module's internal API (XEP-0045 multi-user chat), shared
 * by its files.  Not installed: the module is one shared object built from
 *   muc.c      the service: load/unload, configuration, dispatch of every
 *              stanza to the domain, rooms (create, find, destroy,
 *              persistence), occupants (join, leave, nick change, several
 *              resources), presence and message fan-out, subject, private
 *              messages, IQs forwarded to occupants
 *   admin.c    roles and affiliations (muc#admin), the room configuration
 *              form and destruction (muc#owner), nick registration
 *              (jabber:iq:register), mediated invitations, voice requests
 *   history.c  discussion history on join, the room archive (XEP-0313 on
 *              the room JID through archive/1), stanza-ids
 *   disco.c    disco#info/#items of the service and rooms (RSM,
 *              muc#roominfo), XEP-0410 self-ping, mynactl and HTTP admin
 *   fanout.c   writing one rendering of a stanza to many occupants
 * Each file owns the functions declared in its section below. */
#pragma once

#include <myna/module.h>
#include <myna/archive.h>

G_BEGIN_DECLS

#define NS_MUC            "http://jabber.org/protocol/muc"
#define NS_MUC_USER       "http://jabber.org/protocol/muc#user"
#define NS_MUC_ADMIN      "http://jabber.org/protocol/muc#admin"
#define NS_MUC_OWNER      "http://jabber.org/protocol/muc#owner"
#define NS_MUC_UNIQUE     "http://jabber.org/protocol/muc#unique"
#define NS_MUC_REQUEST    "http://jabber.org/protocol/muc#request"
#define NS_MUC_ROOMCONFIG "http://jabber.org/protocol/muc#roomconfig"
#define NS_MUC_ROOMINFO   "http://jabber.org/protocol/muc#roominfo"
#define NS_MUC_REGISTER   "http://jabber.org/protocol/muc#register"
#define NS_MUC_ROOMS      "http://jabber.org/protocol/muc#rooms"
#define NS_DATA           "jabber:x:data"
#define NS_REGISTER       "jabber:iq:register"
#define NS_DISCO_INFO     "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS    "http://jabber.org/protocol/disco#items"
#define NS_RSM            "http://jabber.org/protocol/rsm"
#define NS_PING           "urn:xmpp:ping"
#define NS_MAM            "urn:xmpp:mam:2"
#define NS_SID            "urn:xmpp:sid:0"
#define NS_DELAY          "urn:xmpp:delay"
#define NS_CONFERENCE     "jabber:x:conference"
#define NS_STANZAS        "urn:ietf:params:xml:ns:xmpp-stanzas"

/* Affiliations (XEP-0045 §5.2), ordered so that a higher one outranks a
 * lower one; outcast is below none. */
typedef enum {
  MUC_AFFIL_OUTCAST = -1,
  MUC_AFFIL_NONE    = 0,
  MUC_AFFIL_MEMBER  = 1,
  MUC_AFFIL_ADMIN   = 2,
  MUC_AFFIL_OWNER   = 3,
} MucAffiliation;

/* Roles (XEP-0045 §5.1), ordered likewise. */
typedef enum {
  MUC_ROLE_NONE        = 0,
  MUC_ROLE_VISITOR     = 1,
  MUC_ROLE_PARTICIPANT = 2,
  MUC_ROLE_MODERATOR   = 3,
} MucRole;

/* Who may see occupants' real JIDs (muc#roomconfig_whois). */
typedef enum {
  MUC_WHOIS_MODERATORS = 0,   /* semi-anonymous */
  MUC_WHOIS_ANYONE     = 1,   /* non-anonymous (status 100 on join) */
} MucWhois;

/* Who may send private messages (muc#roomconfig_allowpm). */
typedef enum {
  MUC_PM_ANYONE       = 0,
  MUC_PM_PARTICIPANTS = 1,
  MUC_PM_MODERATORS   = 2,
  MUC_PM_NONE         = 3,
} MucPmPolicy;

/* A room's configuration (muc#roomconfig).  Strings are owned, never NULL
 * except @password (NULL or "": none). */
typedef struct {
  char        *name;            /* muc#roomconfig_roomname */
  char        *description;     /* muc#roomconfig_roomdesc */
  char        *lang;            /* muc#roomconfig_lang ("" none) */
  gboolean     persistent;      /* muc#roomconfig_persistentroom */
  gboolean     public_room;     /* muc#roomconfig_publicroom (listed) */
  gboolean     members_only;    /* muc#roomconfig_membersonly */
  gboolean     moderated;       /* muc#roomconfig_moderatedroom */
  gboolean     password_protected; /* muc#roomconfig_passwordprotectedroom */
  char        *password;        /* muc#roomconfig_roomsecret */
  guint        max_users;       /* muc#roomconfig_maxusers; 0: the service's limit */
  MucWhois     whois;           /* muc#roomconfig_whois */
  gboolean     change_subject;  /* muc#roomconfig_changesubject: occupants may */
  gboolean     allow_invites;   /* muc#roomconfig_allowinvites: non-admins may invite */
  MucPmPolicy  allow_pm;        /* muc#roomconfig_allowpm */
  gboolean     voice_requests;  /* muc#roomconfig_allowvoicerequests */
  guint        history_length;  /* muc#roomconfig_historylength (messages) */
  gboolean     archived;        /* muc#roomconfig_enablearchiving (mam) */
} MucConfig;

typedef struct _Muc         Muc;
typedef struct _MucRoom     MucRoom;
typedef struct _MucOccupant MucOccupant;

/* The service: one instance per component domain serving muc. */
struct _Muc {
  MynaModule  *mod;
  MynaHost    *host;          /* the component domain */
  MynaServer  *server;
  MynaStorage *storage;
  MynaService *archive;       /* archive/1 of the main host; NULL without mam */
  GHashTable  *rooms;         /* room local part (nodeprepped) → MucRoom*, owned */
  /* configuration ([module:muc], or muc.KEY in the component section) */
  MucConfig    defaults;      /* default_* keys: a new room's configuration */
  char        *room_creation; /* "anyone" | "local" | "admins" */
  GPtrArray   *admins;        /* char* bare JIDs: owners of every room */
  guint        max_rooms_per_user;    /* 0: unlimited */
  guint        max_occupants;         /* a room's limit of limits */
  guint        max_history_length;    /* the limit of history_length */
  guint        max_subject_length;    /* bytes */
  guint        max_nick_length;       /* bytes */
  /* per-file state */
  gpointer     admin_data;    /* admin.c's */
  gpointer     history_data;  /* history.c's */
  gpointer     disco_data;    /* disco.c's */
  gboolean     reloading;     /* muc.c: save ran, so the unload is a reload's
                               * (occupants stay, no 332) */
  gboolean     closing;       /* muc.c: the unload has begun */
  GHashTable  *kicks;         /* muc.c: MucKick* pending (a set, owned) */
  /* muc.c (review): a write to an occupant can end its session on the
   * spot (c2s output limits), and that session's unavailable presence
   * then reaches the room inside the write, while a caller walks the
   * occupants.  Such leaves wait in @deferred while @busy. */
  guint        busy;          /* muc.c: handlers under way (muc_busy_enter) */
  GQueue       deferred;      /* muc.c: MucDeferred* leaves waiting for busy == 0 */
  guint        max_rooms_per_session; /* muc.c (review): rooms one real full JID
                                       * may be in at once; 0: unlimited */
  GHashTable  *session_rooms; /* muc.c: char* real full JID → GUINT (rooms it is in) */
  GHashTable  *owned;         /* muc.c: char* bare JID → GUINT (rooms it owns) */
};

/* One occupant: one nick in one room, held by one real bare JID from one
 * or more of its resources (XEP-0045 §7.2.8 multi-session nicks). */
struct _MucOccupant {
  MucRoom     *room;
  char        *nick;          /* as joined (resourceprepped) */
  MynaJid     *jid;           /* room@service/nick */
  MynaJid     *bare;          /* the real bare JID */
  GPtrArray   *sessions;      /* MynaJid* real full JIDs, in the order they joined */
  MucRole      role;
  MynaStanza  *presence;      /* the latest available presence it sent,
                               * stripped of to, from and muc elements */
  gint64       joined;        /* g_get_real_time() of the first join */
  GList       *link;          /* muc.c: its link in room->order */
};

/* One room. */
struct _MucRoom {
  Muc         *muc;
  char        *local;         /* nodeprepped local part */
  MynaJid     *jid;           /* room@service */
  MucConfig    config;
  gboolean     locked;        /* created, owner has not configured it (§10.1) */
  gint64       created;       /* µs since the epoch */
  MynaStanza  *subject;       /* the last subject message as broadcast
                               * (from room or nick, no to), or NULL */
  GHashTable  *affiliations;  /* char* bare JID → GINT_TO_POINTER (MucAffiliation),
                               * NONE never stored */
  GHashTable  *reserved_nicks; /* char* bare JID → char* nick (muc#register) */
  GHashTable  *occupants;     /* char* nick → MucOccupant*, owned */
  GHashTable  *by_real;       /* char* real full JID → MucOccupant*, borrowed */
  gpointer     history;       /* history.c's per-room state, or NULL */
  gpointer     admin;         /* admin.c's per-room state (voice requests), or NULL */
  GQueue       order;         /* muc.c: the MucOccupant* in join order (this
                               * queue owns them; the tables borrow) */
  gboolean     saved;         /* muc.c: a stored copy exists (muc_rooms) */
};

/* ---- muc.c --------------------------------------------------------------- */

/* The room @local names, or NULL. */
MucRoom     *muc_room_find (Muc *muc, const char *local);
/* The occupant holding @nick, or NULL. */
MucOccupant *muc_room_find_occupant (MucRoom *room, const char *nick);
/* The occupant a real full JID joined as, or NULL. */
MucOccupant *muc_room_find_by_real (MucRoom *room, MynaJid *full);
/* The occupants, borrowed MucOccupant*, in join order. */
GPtrArray   *muc_room_list_occupants (MucRoom *room);
/* @real's affiliation (by its bare JID); service admins are owners. */
MucAffiliation muc_room_get_affiliation (MucRoom *room, MynaJid *real);
/* Sets @bare's affiliation in the table (NONE removes it) and saves the
 * room; the caller applies its effect on occupants (admin.c). */
void         muc_room_set_affiliation (MucRoom *room, const char *bare,
                                       MucAffiliation affiliation);
/* Sets @bare's affiliation in the table (NONE removes it) without saving
 * (loading, restoring); every change of room->affiliations goes through
 * it or muc_room_set_affiliation, which keep Muc.owned right. */
void         muc_room_store_affiliation (MucRoom *room, const char *bare,
                                         MucAffiliation affiliation);
/* Creates room @local for @creator (owner), locked; FALSE with a stanza
 * error condition in @error (not-allowed, resource-constraint…). */
MucRoom     *muc_room_create (Muc *muc, const char *local, MynaJid *creator,
                              GError **error);
/* Saves a persistent room (configuration, affiliations, reserved nicks,
 * subject) or forgets a temporary one, through the storage. */
void         muc_room_save (MucRoom *room);
/* Answers @iq with an empty result once the storage writes queued so far
 * (a muc_room_save, a room's deletion) are durable: a client told "done"
 * never loses the change to a crash right after. */
void         muc_reply_durable (Muc *muc, MynaCall *call, MynaStanza *iq);
/* Destroys the room (XEP-0045 §10.9): every occupant gets unavailable
 * presence with <destroy jid=@alternate><reason/><password/></destroy>,
 * its storage and archive are deleted, @room is freed. */
void         muc_room_destroy (MucRoom *room, const char *alternate,
                               const char *reason, const char *password);
/* Sends @stanza (from the room or an occupant JID, no to) to every
 * session of every occupant, as muc_render_for() renders it. */
void         muc_room_broadcast (MucRoom *room, MynaStanza *stanza);
/* Sends @stanza (no to) to every session of @occ. */
void         muc_occupant_send (MucOccupant *occ, MynaStanza *stanza);
/* Broadcasts @occ's presence, with an <x xmlns=muc#user><item
 * affiliation role [jid] [nick]>… plus <status code> for each of @codes
 * (0-terminated, may be NULL), @actor_nick/@reason inside <item> when
 * not NULL; the occupant's own sessions also get 110 (and 100, 201 where
 * XEP-0045 puts them).  Real JIDs go to those who may see them. */
void         muc_occupant_broadcast_presence (MucOccupant *occ, const int *codes,
                                              const char *actor_nick,
                                              const char *reason);
/* Takes @occ out of the room: every session gets unavailable presence
 * with @codes (0-terminated: 307 kicked, 301 banned, 321 affiliation,
 * 322 members-only, 332 shutdown…), @actor_nick and @reason; a temporary
 * room left empty is destroyed. */
void         muc_occupant_remove (MucOccupant *occ, const int *codes,
                                  const char *actor_nick, const char *reason);
/* Whether @viewer may see other occupants' real JIDs. */
gboolean     muc_room_jids_visible_to (MucRoom *room, MucOccupant *viewer);
/* Sends every occupant a message from the room with these status codes
 * (0-terminated; 104 configuration changed, 170/171 logging…). */
void         muc_room_notify_status (MucRoom *room, const int *codes);
/* Frees the strings of @config. */
void         muc_config_clear (MucConfig *config);
/* A deep copy of @from into @to (whose strings are not owned yet); NULL
 * strings other than the password become "". */
void         muc_config_copy (MucConfig *to, const MucConfig *from);
/* Affiliation/role names and back; -1/MUC_ROLE_NONE-1 on unknown. */
const char  *muc_affiliation_name (MucAffiliation a);
int          muc_affiliation_parse (const char *name);
const char  *muc_role_name (MucRole r);
int          muc_role_parse (const char *name);
/* Brackets work that walks rooms and writes to occupants outside the
 * module's stanza hooks (which bracket themselves): an archive
 * callback, an admin command.  Leaves that arrive in between are applied
 * when the outermost muc_busy_leave() returns, so no occupant or room
 * goes while a caller holds it. */
void         muc_busy_enter (Muc *muc);
void         muc_busy_leave (Muc *muc);

/* ---- admin.c ------------------------------------------------------------- */

/* The role an occupant with @affiliation gets on joining @room. */
MucRole      muc_admin_default_role (MucRoom *room, MucAffiliation affiliation);
/* muc#admin get/set to the room (§8, §9): lists and changes. */
void         muc_admin_iq (MucRoom *room, MynaCall *call, MynaStanza *iq);
/* muc#owner get/set to the room (§10): configuration form, instant room
 * (unlocks), destruction. */
void         muc_owner_iq (MucRoom *room, MynaCall *call, MynaStanza *iq);
/* jabber:iq:register to the room (§7.10): nick registration. */
void         muc_register_iq (MucRoom *room, MynaCall *call, MynaStanza *iq);
/* A non-groupchat message to the room: mediated invitation or decline
 * (§7.8.2), voice request or its approval (§7.13, §8.6).  TRUE when it
 * was one of them (answered, or an error sent). */
gboolean     muc_admin_message (MucRoom *room, MynaCall *call, MynaStanza *message);
/* Changes @occ's role (broadcast; NONE removes it with 307), after an
 * affiliation change or a moderator's request. */
void         muc_admin_set_role (MucOccupant *occ, MucRole role,
                                 const char *actor_nick, const char *reason);
/* Frees admin.c's per-room state. */
void         muc_admin_room_free (MucRoom *room);
/* Hot reload (muc.c's save/restore): admin.c's per-room state (the
 * times of voice requests), or NULL when there is none.
 * Returns: (transfer floating) (nullable) */
GVariant    *muc_admin_room_save (MucRoom *room);
/* Restores what muc_admin_room_save gave into @room. */
void         muc_admin_room_restore (MucRoom *room, GVariant *state);

/* ---- history.c ----------------------------------------------------------- */

/* Records a groupchat message (from the occupant JID, no to) before it is
 * broadcast: adds <stanza-id by=room> (archive's id when archived),
 * keeps it in the room's history (with its delay source), archives it. */
void         muc_history_record (MucRoom *room, MucOccupant *sender, MynaStanza *message);
/* Sends @to (one session of @occ, just joined) the history its <history/>
 * element (NULL: the default) and the room allow, after its presence and
 * before the subject. */
void         muc_history_send (MucRoom *room, MucOccupant *occ, MynaJid *to,
                               MynaStanza *history);
/* urn:xmpp:mam:2 query to the room JID (XEP-0313 §4, XEP-0045 rooms). */
void         muc_history_mam_iq (MucRoom *room, MynaCall *call, MynaStanza *iq);
/* A persistent room was loaded at start: restore its history. */
void         muc_history_room_loaded (MucRoom *room);
/* The room is being destroyed: delete its archive and kept history. */
void         muc_history_room_destroyed (MucRoom *room);
/* Frees history.c's per-room state. */
void         muc_history_room_free (MucRoom *room);
gboolean     muc_history_init (Muc *muc, GError **error);
void         muc_history_fini (Muc *muc);
/* Hot reload (muc.c's save/restore): @room's history as kept in memory
 * (messages, arrival times, the kv sequence), or NULL when none is (a
 * loaded room never read back: the new instance reads the kv store too).
 * Returns: (transfer floating) (nullable) */
GVariant    *muc_history_save (MucRoom *room);
/* Replaces @room's history with what muc_history_save gave (logged and
 * ignored when it is not that). */
void         muc_history_restore (MucRoom *room, GVariant *state);

/* ---- disco.c ------------------------------------------------------------- */

/* disco#info / disco#items to the service (@room NULL) or to a room. */
void         muc_disco_info_iq (Muc *muc, MucRoom *room, MynaCall *call, MynaStanza *iq);
void         muc_disco_items_iq (Muc *muc, MucRoom *room, MynaCall *call, MynaStanza *iq);
/* An urn:xmpp:ping IQ to an occupant JID (XEP-0410): answered when the
 * sender holds that nick, not-acceptable otherwise.  TRUE when answered. */
gboolean     muc_disco_ping_iq (MucRoom *room, const char *nick, MynaCall *call,
                                MynaStanza *iq);
/* mynactl muc … and the HTTP API's /api/v1/muc routes. */
gboolean     muc_disco_init (Muc *muc, GError **error);
void         muc_disco_fini (Muc *muc);
/* Creates room @local as the service's administration does (mynactl muc
 * create, POST /api/v1/muc/rooms): no creation policy or per-user limit
 * applies, nobody is made owner, and the room is left locked as
 * muc_room_create leaves it (the caller unlocks it).  NULL with @error
 * (its message a condition) as muc_room_create.  disco.c's fallback until
 * muc.c offers one: muc_room_create with the service's own JID counted
 * among the admins for the call, and that JID's affiliation removed. */
MucRoom     *muc_disco_room_create_admin (Muc *muc, const char *local, GError **error);

/* ---- fanout.c ------------------------------------------------------------ */

/* Sends @stanza (no to) to each real full JID in @to (MynaJid*), setting
 * to per recipient; serialised once where the core allows it. */
void         muc_fanout (Muc *muc, MynaStanza *stanza, GPtrArray *to);

G_END_DECLS
