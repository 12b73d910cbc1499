/* muc.c: the multi-user chat service (XEP-0045) serving a component
 * domain: the module's load and unload, its configuration, the dispatch
 * of every stanza addressed to the domain or a JID in it, rooms (created
 * on first join, locked until configured, destroyed with an alternate
 * venue, persistent ones kept in the storage's key–value store "muc_rooms"
 * and loaded at start), occupants (join with XEP-0045 §7.2's errors, nick
 * changes, several sessions under one nick, leave), groupchat messages,
 * the subject, private messages and IQs forwarded between occupants.
 * Everything sent to occupants goes through muc_fanout(), grouped so that
 * each distinct rendering of a stanza is built once. */
#include "muc.h"

#include <stdlib.h>
#include <string.h>

/* The version of the serialisation of a stored room. */
#define MUC_ROOM_FORMAT 1
/* The key–value store holding persistent rooms (user "" of the domain). */
#define MUC_ROOMS_STORE "muc_rooms"
/* How long a forwarded IQ waits for the occupant's answer. */
#define MUC_IQ_TIMEOUT_MS 30000

/* The module's typed configuration ([module:muc], or muc.KEY in the
 * component's section), copied into Muc at load. */
typedef struct {
  char    *room_creation;
  char    *admins;
  gint64   max_rooms_per_user;
  gint64   max_occupants;
  gint64   max_history_length;
  gint64   max_subject_length;
  gint64   max_nick_length;
  char    *default_name;
  gboolean default_persistent;
  gboolean default_public;
  gboolean default_members_only;
  gboolean default_moderated;
  char    *default_whois;
  gboolean default_change_subject;
  gboolean default_allow_invites;
  char    *default_allow_pm;
  gboolean default_voice_requests;
  gint64   default_history_length;
  gint64   default_max_users;
  gboolean default_archived;
  gint64   max_rooms_per_session;
} MucSettings;

/* What a rendering of an occupant's presence carries besides the
 * occupant's own <presence/>. */
typedef struct {
  gboolean     unavailable;
  const int   *codes;        /* status codes for everyone (0-terminated) */
  const int   *self_codes;   /* more for the occupant's own sessions (110 is added) */
  const char  *actor_nick;
  const char  *reason;
  const char  *new_nick;     /* <item nick/> of a 303 */
  const char  *status;       /* <status/> text of an unavailable presence */
} MucPresenceOpts;

/* A forwarded IQ waiting for the occupant's answer. */
typedef struct {
  Muc     *muc;
  char    *sender;      /* the real full JID that asked */
  char    *id;          /* its id */
  char    *target;      /* the occupant JID it asked (room@service/nick) */
} MucForward;

/* A leave that arrived while the service was busy (Muc.deferred). */
typedef struct {
  MynaJid    *from;       /* the real full JID leaving */
  char       *local;      /* the room's local part */
  MynaStanza *presence;   /* its unavailable presence */
} MucDeferred;

static void muc_room_free (MucRoom *room);
static void muc_count_add (GHashTable *counts, const char *key);
static void muc_count_sub (GHashTable *counts, const char *key);
static void muc_error_kick (Muc *muc, MynaCall *call, MynaStanza *stanza);
static void muc_occupant_leave (MucOccupant *occ, MynaJid *real, MynaStanza *presence);

/* ---- small helpers ----------------------------------------------------------- */

/* Sends @stanza (no to) to one real full JID. */
static void
muc_send_one (Muc *muc, MynaStanza *stanza, MynaJid *to)
{
  g_autoptr(GPtrArray) one = g_ptr_array_new ();

  g_ptr_array_add (one, to);
  muc_fanout (muc, stanza, one);
}

/* Answers @stanza with an error from its recipient, logged at debug. */
static void
muc_reply_error (MynaCall *call, MynaStanza *stanza, MynaErrorType type,
                 const char *condition, const char *text)
{
  const char *t = myna_stanza_get_type (stanza);

  g_debug ("%s from %s to %s: %s%s%s", myna_stanza_get_name (stanza),
           myna_jid_to_string (myna_call_get_from (call)),
           myna_jid_to_string (myna_call_get_to (call)), condition,
           text != NULL ? ": " : "", text != NULL ? text : "");
  if (g_strcmp0 (t, "error") == 0 || g_strcmp0 (t, "result") == 0)
    return;
  myna_call_reply_error (call, stanza, type, condition, text);
}

/* Whether @bare is one of the service's admins. */
static gboolean
muc_is_admin (Muc *muc, const char *bare)
{
  for (guint i = 0; i < muc->admins->len; i++)
    if (g_strcmp0 (muc->admins->pdata[i], bare) == 0)
      return TRUE;
  return FALSE;
}

/* The most occupants @room admits. */
static guint
muc_room_limit (MucRoom *room)
{
  guint max = room->muc->max_occupants;

  if (room->config.max_users > 0 && room->config.max_users < max)
    max = room->config.max_users;
  return max;
}

/* Appends <status code/> for each of @codes (0-terminated; NULL: none). */
static void
muc_add_codes (MynaStanza *x, const int *codes)
{
  for (guint i = 0; codes != NULL && codes[i] != 0; i++)
    {
      char code[16];
      MynaStanza *s = myna_stanza_add_child (x, "status", NULL);

      g_snprintf (code, sizeof code, "%d", codes[i]);
      myna_stanza_set_attr (s, "code", code);
    }
}

/* ---- configuration --------------------------------------------------------------- */

/* Who may see real JIDs, from its configuration name. */
static MucWhois
muc_whois_parse (const char *name)
{
  return g_strcmp0 (name, "anyone") == 0 ? MUC_WHOIS_ANYONE : MUC_WHOIS_MODERATORS;
}

/* Who may send private messages, from its configuration name. */
static MucPmPolicy
muc_pm_parse (const char *name)
{
  if (g_strcmp0 (name, "participants") == 0)
    return MUC_PM_PARTICIPANTS;
  if (g_strcmp0 (name, "moderators") == 0)
    return MUC_PM_MODERATORS;
  if (g_strcmp0 (name, "none") == 0)
    return MUC_PM_NONE;
  return MUC_PM_ANYONE;
}

void
muc_config_clear (MucConfig *config)
{
  g_clear_pointer (&config->name, g_free);
  g_clear_pointer (&config->description, g_free);
  g_clear_pointer (&config->lang, g_free);
  g_clear_pointer (&config->password, g_free);
}

void
muc_config_copy (MucConfig *to, const MucConfig *from)
{
  *to = *from;
  to->name = g_strdup (from->name != NULL ? from->name : "");
  to->description = g_strdup (from->description != NULL ? from->description : "");
  to->lang = g_strdup (from->lang != NULL ? from->lang : "");
  to->password = g_strdup (from->password);
}

/* Copies the typed configuration into @muc. */
static void
muc_settings_apply (Muc *muc, const MucSettings *s)
{
  g_auto(GStrv) admins = NULL;

  muc->room_creation = g_strdup (s->room_creation);
  if (g_strcmp0 (s->room_creation, "anyone") != 0 && g_strcmp0 (s->room_creation, "local") != 0
      && g_strcmp0 (s->room_creation, "admins") != 0)
    {
      g_warning ("muc: room_creation = %s is none of anyone, local, admins: using local",
                 s->room_creation);
      g_free (muc->room_creation);
      muc->room_creation = g_strdup ("local");
    }
  muc->admins = g_ptr_array_new_with_free_func (g_free);
  admins = g_strsplit_set (s->admins != NULL ? s->admins : "", ",; \t", -1);
  for (guint i = 0; admins[i] != NULL; i++)
    {
      g_autoptr(MynaJid) jid = NULL;

      if (admins[i][0] == '\0')
        continue;
      jid = myna_jid_parse (admins[i], NULL);
      if (jid == NULL)
        g_warning ("muc: admins: %s is not a JID: ignored", admins[i]);
      else
        g_ptr_array_add (muc->admins, g_strdup (myna_jid_bare_string (jid)));
    }
  muc->max_rooms_per_user = (guint) s->max_rooms_per_user;
  muc->max_occupants = (guint) s->max_occupants;
  muc->max_history_length = (guint) s->max_history_length;
  muc->max_subject_length = (guint) s->max_subject_length;
  muc->max_nick_length = (guint) s->max_nick_length;
  muc->max_rooms_per_session = (guint) s->max_rooms_per_session;

  muc->defaults.name = g_strdup (s->default_name != NULL ? s->default_name : "");
  muc->defaults.description = g_strdup ("");
  muc->defaults.lang = g_strdup ("");
  muc->defaults.persistent = s->default_persistent;
  muc->defaults.public_room = s->default_public;
  muc->defaults.members_only = s->default_members_only;
  muc->defaults.moderated = s->default_moderated;
  muc->defaults.whois = muc_whois_parse (s->default_whois);
  muc->defaults.change_subject = s->default_change_subject;
  muc->defaults.allow_invites = s->default_allow_invites;
  muc->defaults.allow_pm = muc_pm_parse (s->default_allow_pm);
  muc->defaults.voice_requests = s->default_voice_requests;
  muc->defaults.history_length = MIN ((guint) s->default_history_length, muc->max_history_length);
  muc->defaults.max_users = (guint) s->default_max_users;
  muc->defaults.archived = s->default_archived;
}

/* ---- lookups --------------------------------------------------------------------- */

MucRoom *
muc_room_find (Muc *muc, const char *local)
{
  g_return_val_if_fail (muc != NULL, NULL);
  return local != NULL ? g_hash_table_lookup (muc->rooms, local) : NULL;
}

MucOccupant *
muc_room_find_occupant (MucRoom *room, const char *nick)
{
  g_return_val_if_fail (room != NULL, NULL);
  return nick != NULL ? g_hash_table_lookup (room->occupants, nick) : NULL;
}

MucOccupant *
muc_room_find_by_real (MucRoom *room, MynaJid *full)
{
  g_return_val_if_fail (room != NULL && full != NULL, NULL);
  return g_hash_table_lookup (room->by_real, myna_jid_to_string (full));
}

GPtrArray *
muc_room_list_occupants (MucRoom *room)
{
  GPtrArray *all = g_ptr_array_sized_new (room->order.length);

  for (GList *l = room->order.head; l != NULL; l = l->next)
    g_ptr_array_add (all, l->data);
  return all;
}

MucAffiliation
muc_room_get_affiliation (MucRoom *room, MynaJid *real)
{
  const char *bare = myna_jid_bare_string (real);

  if (muc_is_admin (room->muc, bare))
    return MUC_AFFIL_OWNER;
  return GPOINTER_TO_INT (g_hash_table_lookup (room->affiliations, bare));
}

void
muc_room_store_affiliation (MucRoom *room, const char *bare, MucAffiliation affiliation)
{
  MucAffiliation old = GPOINTER_TO_INT (g_hash_table_lookup (room->affiliations, bare));

  if (old == MUC_AFFIL_OWNER && affiliation != MUC_AFFIL_OWNER)
    muc_count_sub (room->muc->owned, bare);
  else if (old != MUC_AFFIL_OWNER && affiliation == MUC_AFFIL_OWNER)
    muc_count_add (room->muc->owned, bare);
  if (affiliation == MUC_AFFIL_NONE)
    g_hash_table_remove (room->affiliations, bare);
  else
    g_hash_table_insert (room->affiliations, g_strdup (bare), GINT_TO_POINTER (affiliation));
}

void
muc_room_set_affiliation (MucRoom *room, const char *bare, MucAffiliation affiliation)
{
  g_return_if_fail (room != NULL && bare != NULL);
  muc_room_store_affiliation (room, bare, affiliation);
  muc_room_save (room);
}

gboolean
muc_room_jids_visible_to (MucRoom *room, MucOccupant *viewer)
{
  return room->config.whois == MUC_WHOIS_ANYONE
         || (viewer != NULL && viewer->role == MUC_ROLE_MODERATOR);
}

/* ---- rooms: life cycle ------------------------------------------------------------ */

/* A new, empty room @local with @config (copied). */
static MucRoom *
muc_room_new (Muc *muc, const char *local, const MucConfig *config)
{
  MucRoom *room = g_new0 (MucRoom, 1);

  room->muc = muc;
  room->local = g_strdup (local);
  room->jid = myna_jid_new (local, myna_host_get_name (muc->host), NULL, NULL);
  muc_config_copy (&room->config, config);
  room->created = g_get_real_time ();
  room->affiliations = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  room->reserved_nicks = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  room->occupants = g_hash_table_new (g_str_hash, g_str_equal);
  room->by_real = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_queue_init (&room->order);
  return room;
}

/* How many rooms @bare owns: a lookup (Muc.owned), not a walk. */
static guint
muc_count_owned (Muc *muc, const char *bare)
{
  return GPOINTER_TO_UINT (g_hash_table_lookup (muc->owned, bare));
}

/* One more for @key in @counts (char* → GUINT). */
static void
muc_count_add (GHashTable *counts, const char *key)
{
  g_hash_table_insert (counts, g_strdup (key),
                       GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (counts, key)) + 1));
}

/* One less for @key in @counts (gone at zero). */
static void
muc_count_sub (GHashTable *counts, const char *key)
{
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (counts, key));

  if (n <= 1)
    g_hash_table_remove (counts, key);
  else
    g_hash_table_insert (counts, g_strdup (key), GUINT_TO_POINTER (n - 1));
}

/* Records that real full JID @real is in @room as @occ (room->by_real),
 * counting the rooms each session is in (Muc.session_rooms). */
static void
muc_by_real_add (MucRoom *room, MynaJid *real, MucOccupant *occ)
{
  const char *full = myna_jid_to_string (real);
  Muc *muc = room->muc;

  if (!g_hash_table_contains (room->by_real, full))
    muc_count_add (muc->session_rooms, full);
  g_hash_table_insert (room->by_real, g_strdup (full), occ);
}

/* Takes one session out of its count of rooms. */
static void
muc_session_rooms_sub (Muc *muc, const char *full)
{
  muc_count_sub (muc->session_rooms, full);
}

/* Undoes muc_by_real_add(). */
static void
muc_by_real_remove (MucRoom *room, MynaJid *real)
{
  const char *full = myna_jid_to_string (real);

  if (g_hash_table_remove (room->by_real, full))
    muc_session_rooms_sub (room->muc, full);
}

/* Whether session @real is in max_rooms_per_session rooms already: a
 * lookup, not a walk over every room. */
static gboolean
muc_session_rooms_full (Muc *muc, MynaJid *real)
{
  if (muc->max_rooms_per_session == 0 || muc_is_admin (muc, myna_jid_bare_string (real)))
    return FALSE;
  return GPOINTER_TO_UINT (g_hash_table_lookup (muc->session_rooms, myna_jid_to_string (real)))
         >= muc->max_rooms_per_session;
}

MucRoom *
muc_room_create (Muc *muc, const char *local, MynaJid *creator, GError **error)
{
  const char *bare;
  gboolean admin;
  MucRoom *room;

  g_return_val_if_fail (muc != NULL && local != NULL && creator != NULL, NULL);
  bare = myna_jid_bare_string (creator);
  admin = muc_is_admin (muc, bare);
  if (g_hash_table_contains (muc->rooms, local))
    {
      g_set_error_literal (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED, "conflict");
      return NULL;
    }
  if (!admin && g_strcmp0 (muc->room_creation, "anyone") != 0)
    {
      MynaHost *home = myna_server_get_host (muc->server, myna_jid_get_domain (creator));
      gboolean local_user = home != NULL && !myna_host_is_component (home)
                            && myna_jid_get_local (creator) != NULL;

      if (g_strcmp0 (muc->room_creation, "admins") == 0 || !local_user)
        {
          g_set_error_literal (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED, "not-allowed");
          return NULL;
        }
    }
  if (!admin && muc->max_rooms_per_user > 0
      && muc_count_owned (muc, bare) >= muc->max_rooms_per_user)
    {
      g_set_error_literal (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED,
                           "resource-constraint");
      return NULL;
    }
  room = muc_room_new (muc, local, &muc->defaults);
  if (room->config.name[0] == '\0')
    {
      g_free (room->config.name);
      room->config.name = g_strdup (local);
    }
  room->locked = TRUE;
  muc_room_store_affiliation (room, bare, MUC_AFFIL_OWNER);
  g_hash_table_insert (muc->rooms, g_strdup (local), room);
  g_info ("room %s created by %s", myna_jid_to_string (room->jid), bare);
  return room;
}

/* Frees @occ (not in any table any more). */
static void
muc_occupant_free (MucOccupant *occ)
{
  g_free (occ->nick);
  g_clear_pointer (&occ->jid, myna_jid_unref);
  g_clear_pointer (&occ->bare, myna_jid_unref);
  g_ptr_array_unref (occ->sessions);
  g_clear_pointer (&occ->presence, myna_stanza_unref);
  g_free (occ);
}

/* Frees @room and its occupants, without telling anyone (it is out of
 * muc->rooms already, or the service is going away). */
static void
muc_room_free (MucRoom *room)
{
  muc_admin_room_free (room);
  muc_history_room_free (room);
  g_queue_clear_full (&room->order, (GDestroyNotify) muc_occupant_free);
  g_hash_table_unref (room->occupants);
  if (room->muc->session_rooms != NULL)
    {
      GHashTableIter it;
      gpointer full;

      g_hash_table_iter_init (&it, room->by_real);
      while (g_hash_table_iter_next (&it, &full, NULL))
        muc_session_rooms_sub (room->muc, full);
    }
  g_hash_table_unref (room->by_real);
  if (room->muc->owned != NULL)
    {
      GHashTableIter it;
      gpointer bare, a;

      g_hash_table_iter_init (&it, room->affiliations);
      while (g_hash_table_iter_next (&it, &bare, &a))
        if (GPOINTER_TO_INT (a) == MUC_AFFIL_OWNER)
          muc_count_sub (room->muc->owned, bare);
    }
  g_hash_table_unref (room->affiliations);
  g_hash_table_unref (room->reserved_nicks);
  g_clear_pointer (&room->subject, myna_stanza_unref);
  muc_config_clear (&room->config);
  g_clear_pointer (&room->jid, myna_jid_unref);
  g_free (room->local);
  g_free (room);
}

void
muc_room_destroy (MucRoom *room, const char *alternate, const char *reason,
                  const char *password)
{
  Muc *muc;

  g_return_if_fail (room != NULL);
  muc = room->muc;
  muc_busy_enter (muc);
  g_info ("room %s destroyed%s%s", myna_jid_to_string (room->jid),
          alternate != NULL ? ", alternate venue " : "", alternate != NULL ? alternate : "");
  /* Each occupant gets its own unavailable presence (§10.9). */
  for (GList *l = room->order.head; l != NULL; l = l->next)
    {
      MucOccupant *occ = l->data;
      g_autoptr(MynaStanza) p = myna_stanza_new ("presence", MYNA_NS_CLIENT);
      MynaStanza *x, *item, *destroy;

      myna_stanza_set_attr (p, "type", "unavailable");
      myna_stanza_set_attr (p, "from", myna_jid_to_string (occ->jid));
      x = myna_stanza_add_child (p, "x", NS_MUC_USER);
      item = myna_stanza_add_child (x, "item", NULL);
      myna_stanza_set_attr (item, "affiliation", "none");
      myna_stanza_set_attr (item, "role", "none");
      destroy = myna_stanza_add_child (x, "destroy", NULL);
      if (alternate != NULL && alternate[0] != '\0')
        myna_stanza_set_attr (destroy, "jid", alternate);
      if (reason != NULL)
        myna_stanza_add_text_child (destroy, "reason", reason);
      if (password != NULL && password[0] != '\0')
        myna_stanza_add_text_child (destroy, "password", password);
      muc_add_codes (x, (const int[]) { 110, 0 });
      muc_fanout (muc, p, occ->sessions);
    }
  if (room->saved)
    myna_kv_set (muc->storage, myna_host_get_name (muc->host), "", MUC_ROOMS_STORE,
                 room->local, NULL, NULL, NULL, NULL);
  muc_history_room_destroyed (room);
  g_hash_table_remove (muc->rooms, room->local);
  muc_busy_leave (muc);
}

/* ---- persistence ---------------------------------------------------------------- */

/* Appends "@key @value\n" to @out, @value with backslash and newline
 * escaped (\\ and \n). */
static void
muc_line (GString *out, const char *key, const char *value)
{
  g_string_append (out, key);
  g_string_append_c (out, ' ');
  for (const char *p = value != NULL ? value : ""; *p != '\0'; p++)
    {
      if (*p == '\\')
        g_string_append (out, "\\\\");
      else if (*p == '\n')
        g_string_append (out, "\\n");
      else
        g_string_append_c (out, *p);
    }
  g_string_append_c (out, '\n');
}

/* The stored form of @room: "muc-room 1" (the format's version), then one
 * line per field, "KEY VALUE" (VALUE escaped as muc_line does): the
 * configuration, created, "aff N BARE" per affiliation, "nick BARE NICK"
 * per reserved nick, the subject message as XML.  Text, so that 10,000
 * rooms load in a few milliseconds. */
static char *
muc_room_serialise (MucRoom *room)
{
  const MucConfig *c = &room->config;
  GString *out = g_string_sized_new (256);
  GHashTableIter it;
  gpointer key, value;
  char num[32];

  g_string_append_printf (out, "muc-room %d\n", MUC_ROOM_FORMAT);
  muc_line (out, "name", c->name);
  muc_line (out, "description", c->description);
  muc_line (out, "lang", c->lang);
  muc_line (out, "password", c->password);
#define MUC_FLAG(k, v) muc_line (out, k, (v) ? "1" : "0")
#define MUC_NUM(k, v) (g_snprintf (num, sizeof num, "%" G_GINT64_FORMAT, (gint64) (v)), \
                       muc_line (out, k, num))
  MUC_FLAG ("persistent", c->persistent);
  MUC_FLAG ("public", c->public_room);
  MUC_FLAG ("members_only", c->members_only);
  MUC_FLAG ("moderated", c->moderated);
  MUC_FLAG ("password_protected", c->password_protected);
  MUC_NUM ("max_users", c->max_users);
  MUC_NUM ("whois", c->whois);
  MUC_FLAG ("change_subject", c->change_subject);
  MUC_FLAG ("allow_invites", c->allow_invites);
  MUC_NUM ("allow_pm", c->allow_pm);
  MUC_FLAG ("voice_requests", c->voice_requests);
  MUC_NUM ("history_length", c->history_length);
  MUC_FLAG ("archived", c->archived);
  MUC_NUM ("created", room->created);
#undef MUC_FLAG
#undef MUC_NUM
  g_hash_table_iter_init (&it, room->affiliations);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      g_autofree char *v = g_strdup_printf ("%d %s", GPOINTER_TO_INT (value), (const char *) key);
      muc_line (out, "aff", v);
    }
  g_hash_table_iter_init (&it, room->reserved_nicks);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      g_autofree char *v = g_strdup_printf ("%s %s", (const char *) key, (const char *) value);
      muc_line (out, "nick", v);
    }
  if (room->subject != NULL)
    {
      g_autofree char *subject = myna_stanza_to_string (room->subject);
      muc_line (out, "subject", subject);
    }
  return g_string_free (out, FALSE);
}

void
muc_room_save (MucRoom *room)
{
  Muc *muc;

  g_return_if_fail (room != NULL);
  muc = room->muc;
  if (room->config.persistent)
    {
      g_autofree char *value = muc_room_serialise (room);

      myna_kv_set (muc->storage, myna_host_get_name (muc->host), "", MUC_ROOMS_STORE,
                   room->local, value, NULL, NULL, NULL);
      room->saved = TRUE;
    }
  else if (room->saved)
    {
      myna_kv_set (muc->storage, myna_host_get_name (muc->host), "", MUC_ROOMS_STORE,
                   room->local, NULL, NULL, NULL, NULL);
      room->saved = FALSE;
    }
}

/* The result muc_reply_durable holds until the writes are on disk. */
typedef struct {
  Muc        *muc;
  MynaStanza *reply;
} MucDurableReply;

static void
muc_durable_reply_free (gpointer p)
{
  MucDurableReply *d = p;

  myna_stanza_unref (d->reply);
  g_free (d);
}

static void
muc_durable_reply_send (const GError *error, gpointer p)
{
  MucDurableReply *d = p;

  if (error != NULL)
    {
      g_warning ("muc: storage closing (%s): a change's requester gets no answer",
                 error->message);
      return;
    }
  myna_server_route (d->muc->server, d->reply);
}

void
muc_reply_durable (Muc *muc, MynaCall *call, MynaStanza *iq)
{
  MucDurableReply *d;

  g_return_if_fail (muc != NULL && call != NULL && iq != NULL);
  d = g_new0 (MucDurableReply, 1);
  d->muc = muc;
  d->reply = myna_stanza_new_iq_result (iq);
  if (myna_stanza_get_from (d->reply) == NULL)
    myna_stanza_set_attr (d->reply, "from", myna_jid_to_string (myna_call_get_to (call)));
  myna_storage_after_writes (muc->storage, muc_durable_reply_send, d, muc_durable_reply_free);
}

/* Undoes muc_line's escapes in place. */
static void
muc_unescape (char *value)
{
  char *w = value;

  for (const char *r = value; *r != '\0'; r++)
    {
      if (*r == '\\' && r[1] == 'n')
        *w++ = '\n', r++;
      else if (*r == '\\' && r[1] == '\\')
        *w++ = '\\', r++;
      else
        *w++ = *r;
    }
  *w = '\0';
}

/* Sets one stored field of @room; FALSE for a malformed value. */
static gboolean
muc_room_set_field (MucRoom *room, const char *key, char *value)
{
  MucConfig *c = &room->config;
  char *end = NULL;
  gint64 n = g_ascii_strtoll (value, &end, 10);
  gboolean numeric = end != value && end != NULL && *end == '\0';
  char **str = g_str_equal (key, "name") ? &c->name
               : g_str_equal (key, "description") ? &c->description
               : g_str_equal (key, "lang") ? &c->lang
               : g_str_equal (key, "password") ? &c->password : NULL;
  gboolean *flag = g_str_equal (key, "persistent") ? &c->persistent
                   : g_str_equal (key, "public") ? &c->public_room
                   : g_str_equal (key, "members_only") ? &c->members_only
                   : g_str_equal (key, "moderated") ? &c->moderated
                   : g_str_equal (key, "password_protected") ? &c->password_protected
                   : g_str_equal (key, "change_subject") ? &c->change_subject
                   : g_str_equal (key, "allow_invites") ? &c->allow_invites
                   : g_str_equal (key, "voice_requests") ? &c->voice_requests
                   : g_str_equal (key, "archived") ? &c->archived : NULL;

  if (str != NULL)
    {
      g_free (*str);
      *str = g_strdup (value);
    }
  else if (flag != NULL)
    *flag = numeric && n != 0;
  else if (g_str_equal (key, "max_users") && numeric && n >= 0 && n <= G_MAXUINT)
    c->max_users = (guint) n;
  else if (g_str_equal (key, "whois") && numeric)
    c->whois = n == MUC_WHOIS_ANYONE ? MUC_WHOIS_ANYONE : MUC_WHOIS_MODERATORS;
  else if (g_str_equal (key, "allow_pm") && numeric && n >= MUC_PM_ANYONE && n <= MUC_PM_NONE)
    c->allow_pm = (MucPmPolicy) n;
  else if (g_str_equal (key, "history_length") && numeric && n >= 0 && n <= G_MAXUINT)
    c->history_length = (guint) n;
  else if (g_str_equal (key, "created") && numeric)
    room->created = n;
  else if (g_str_equal (key, "aff"))
    {
      char *bare = strchr (value, ' ');
      int a;

      if (bare == NULL)
        return FALSE;
      *bare++ = '\0';
      a = atoi (value);
      if (a < MUC_AFFIL_OUTCAST || a > MUC_AFFIL_OWNER || *bare == '\0')
        return FALSE;
      if (a != MUC_AFFIL_NONE)
        muc_room_store_affiliation (room, bare, a);
    }
  else if (g_str_equal (key, "nick"))
    {
      char *nick = strchr (value, ' ');

      if (nick == NULL)
        return FALSE;
      *nick++ = '\0';
      g_hash_table_insert (room->reserved_nicks, g_strdup (value), g_strdup (nick));
    }
  else if (g_str_equal (key, "subject"))
    {
      g_clear_pointer (&room->subject, myna_stanza_unref);
      room->subject = myna_stanza_parse (value, -1, NULL);
      return room->subject != NULL;
    }
  else if (g_str_equal (key, "max_users") || g_str_equal (key, "whois")
           || g_str_equal (key, "allow_pm") || g_str_equal (key, "history_length")
           || g_str_equal (key, "created"))
    return FALSE;
  /* Unknown keys (a later version's additions) are ignored. */
  return TRUE;
}

/* Reads a string of the stored dictionary into *@out (replacing it). */
static void
muc_dict_string (GVariantDict *d, const char *key, char **out)
{
  const char *s;

  if (g_variant_dict_lookup (d, key, "&s", &s))
    {
      g_free (*out);
      *out = g_strdup (s);
    }
}

/* The room stored under @local as @text in the GVariant text form of the
 * first rooms commit (before "muc-room 1"; tests seed it), or NULL
 * (logged).  Read only: a save writes the line form. */
static MucRoom *
muc_room_deserialise_gvariant (Muc *muc, const char *local, const char *text)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) v = g_variant_parse (G_VARIANT_TYPE ("(ua{sv})"), text, NULL, NULL, &error);
  g_autoptr(GVariant) dict = NULL;
  g_autoptr(GVariant) affs = NULL;
  g_autoptr(GVariant) nicks = NULL;
  guint32 version;
  MucRoom *room;
  MucConfig *c;
  GVariantIter it;
  const char *k, *s;
  gint32 a;
  guint32 u;

  if (v == NULL)
    {
      g_warning ("muc: stored room %s is unreadable (%s): skipped", local, error->message);
      return NULL;
    }
  g_variant_get (v, "(u@a{sv})", &version, &dict);
  if (version != MUC_ROOM_FORMAT)
    {
      g_warning ("muc: stored room %s has format %u, this build reads %u: skipped", local,
                 version, MUC_ROOM_FORMAT);
      return NULL;
    }
  g_auto(GVariantDict) d = G_VARIANT_DICT_INIT (dict);
  room = muc_room_new (muc, local, &muc->defaults);
  c = &room->config;
  muc_dict_string (&d, "name", &c->name);
  muc_dict_string (&d, "description", &c->description);
  muc_dict_string (&d, "lang", &c->lang);
  muc_dict_string (&d, "password", &c->password);
  g_variant_dict_lookup (&d, "persistent", "b", &c->persistent);
  g_variant_dict_lookup (&d, "public", "b", &c->public_room);
  g_variant_dict_lookup (&d, "members_only", "b", &c->members_only);
  g_variant_dict_lookup (&d, "moderated", "b", &c->moderated);
  g_variant_dict_lookup (&d, "password_protected", "b", &c->password_protected);
  g_variant_dict_lookup (&d, "max_users", "u", &c->max_users);
  if (g_variant_dict_lookup (&d, "whois", "u", &u))
    c->whois = u == MUC_WHOIS_ANYONE ? MUC_WHOIS_ANYONE : MUC_WHOIS_MODERATORS;
  g_variant_dict_lookup (&d, "change_subject", "b", &c->change_subject);
  g_variant_dict_lookup (&d, "allow_invites", "b", &c->allow_invites);
  if (g_variant_dict_lookup (&d, "allow_pm", "u", &u))
    c->allow_pm = u <= MUC_PM_NONE ? (MucPmPolicy) u : MUC_PM_ANYONE;
  g_variant_dict_lookup (&d, "voice_requests", "b", &c->voice_requests);
  g_variant_dict_lookup (&d, "history_length", "u", &c->history_length);
  g_variant_dict_lookup (&d, "archived", "b", &c->archived);
  g_variant_dict_lookup (&d, "created", "x", &room->created);
  affs = g_variant_dict_lookup_value (&d, "affiliations", G_VARIANT_TYPE ("a{si}"));
  if (affs != NULL)
    {
      g_variant_iter_init (&it, affs);
      while (g_variant_iter_next (&it, "{&si}", &k, &a))
        if (a >= MUC_AFFIL_OUTCAST && a <= MUC_AFFIL_OWNER && a != MUC_AFFIL_NONE)
          muc_room_store_affiliation (room, k, a);
    }
  nicks = g_variant_dict_lookup_value (&d, "reserved_nicks", G_VARIANT_TYPE ("a{ss}"));
  if (nicks != NULL)
    {
      g_variant_iter_init (&it, nicks);
      while (g_variant_iter_next (&it, "{&s&s}", &k, &s))
        g_hash_table_insert (room->reserved_nicks, g_strdup (k), g_strdup (s));
    }
  if (g_variant_dict_lookup (&d, "subject", "&s", &s))
    room->subject = myna_stanza_parse (s, -1, NULL);
  room->saved = TRUE;
  return room;
}

/* The room stored under @local as @text, or NULL (logged) when it cannot
 * be read. */
static MucRoom *
muc_room_deserialise (Muc *muc, const char *local, const char *text)
{
  g_autofree char *copy = NULL;
  char *line, *next;
  MucRoom *room;

  if (text[0] == '(')
    return muc_room_deserialise_gvariant (muc, local, text);
  copy = g_strdup (text);
  line = copy;

  next = strchr (line, '\n');
  if (next != NULL)
    *next++ = '\0';
  if (!g_str_has_prefix (line, "muc-room ") || atoi (line + 9) != MUC_ROOM_FORMAT)
    {
      g_warning ("muc: stored room %s has format \"%.20s\", this build reads %d: skipped",
                 local, line, MUC_ROOM_FORMAT);
      return NULL;
    }
  room = muc_room_new (muc, local, &muc->defaults);
  for (line = next; line != NULL && *line != '\0'; line = next)
    {
      char *value;

      next = strchr (line, '\n');
      if (next != NULL)
        *next++ = '\0';
      value = strchr (line, ' ');
      if (value != NULL)
        *value++ = '\0';
      else
        value = line + strlen (line);
      muc_unescape (value);
      if (!muc_room_set_field (room, line, value))
        g_warning ("muc: stored room %s: bad %s: ignored", local, line);
    }
  room->saved = TRUE;
  return room;
}

/* Loads every stored room; FALSE with @error when the store is unreadable. */
static gboolean
muc_rooms_load (Muc *muc, GError **error)
{
  g_autoptr(GHashTable) all = myna_kv_get_all (muc->storage, myna_host_get_name (muc->host),
                                               "", MUC_ROOMS_STORE, error);
  GHashTableIter it;
  gpointer key, value;

  if (all == NULL)
    return FALSE;
  g_hash_table_iter_init (&it, all);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      MucRoom *room = muc_room_deserialise (muc, key, value);

      if (room == NULL)
        continue;
      g_hash_table_insert (muc->rooms, g_strdup (room->local), room);
      muc_history_room_loaded (room);
    }
  g_info ("%s: %u persistent rooms loaded", myna_host_get_name (muc->host),
          g_hash_table_size (muc->rooms));
  return TRUE;
}

/* ---- sending to occupants -------------------------------------------------------- */

void
muc_room_broadcast (MucRoom *room, MynaStanza *stanza)
{
  g_autoptr(GPtrArray) to = NULL;

  g_return_if_fail (room != NULL && stanza != NULL);
  to = g_ptr_array_sized_new (room->order.length);
  for (GList *l = room->order.head; l != NULL; l = l->next)
    {
      MucOccupant *occ = l->data;
      for (guint i = 0; i < occ->sessions->len; i++)
        g_ptr_array_add (to, occ->sessions->pdata[i]);
    }
  if (to->len > 0)
    muc_fanout (room->muc, stanza, to);
}

void
muc_occupant_send (MucOccupant *occ, MynaStanza *stanza)
{
  g_return_if_fail (occ != NULL && stanza != NULL);
  muc_fanout (occ->room->muc, stanza, occ->sessions);
}

void
muc_room_notify_status (MucRoom *room, const int *codes)
{
  g_autoptr(MynaStanza) m = myna_stanza_new ("message", MYNA_NS_CLIENT);

  g_return_if_fail (room != NULL);
  myna_stanza_set_attr (m, "type", "groupchat");
  myna_stanza_set_attr (m, "from", myna_jid_to_string (room->jid));
  muc_add_codes (myna_stanza_add_child (m, "x", NS_MUC_USER), codes);
  muc_room_broadcast (room, m);
}

/* One rendering of @occ's presence: with its real JID or not, for its own
 * sessions (@self: 110 and the self codes) or the others. */
static MynaStanza *
muc_render_presence (MucOccupant *occ, const MucPresenceOpts *o, gboolean with_jid,
                     gboolean self)
{
  MucRoom *room = occ->room;
  MynaStanza *p, *x, *item;

  if (o->unavailable || occ->presence == NULL)
    {
      p = myna_stanza_new ("presence", MYNA_NS_CLIENT);
      if (o->unavailable)
        myna_stanza_set_attr (p, "type", "unavailable");
      if (o->unavailable && o->status != NULL)
        myna_stanza_add_text_child (p, "status", o->status);
    }
  else
    p = myna_stanza_copy (occ->presence);
  myna_stanza_set_attr (p, "from", myna_jid_to_string (occ->jid));
  x = myna_stanza_add_child (p, "x", NS_MUC_USER);
  item = myna_stanza_add_child (x, "item", NULL);
  myna_stanza_set_attr (item, "affiliation",
                        muc_affiliation_name (muc_room_get_affiliation (room, occ->bare)));
  myna_stanza_set_attr (item, "role",
                        muc_role_name (o->unavailable ? MUC_ROLE_NONE : occ->role));
  if (with_jid && occ->sessions->len > 0)
    myna_stanza_set_attr (item, "jid", myna_jid_to_string (occ->sessions->pdata[0]));
  if (o->new_nick != NULL)
    myna_stanza_set_attr (item, "nick", o->new_nick);
  if (o->actor_nick != NULL)
    myna_stanza_set_attr (myna_stanza_add_child (item, "actor", NULL), "nick", o->actor_nick);
  if (o->reason != NULL)
    myna_stanza_add_text_child (item, "reason", o->reason);
  muc_add_codes (x, o->codes);
  if (self)
    {
      muc_add_codes (x, o->self_codes);
      muc_add_codes (x, (const int[]) { 110, 0 });
    }
  return p;
}

/* Sends @occ's presence to everyone in the room: one rendering for its
 * own sessions, one with its real JID for those who may see it, one
 * without for the others. */
static void
muc_presence_broadcast (MucOccupant *occ, const MucPresenceOpts *o)
{
  MucRoom *room = occ->room;
  g_autoptr(GPtrArray) with = g_ptr_array_new ();
  g_autoptr(GPtrArray) without = g_ptr_array_new ();
  g_autoptr(MynaStanza) self = muc_render_presence (occ, o, TRUE, TRUE);

  for (GList *l = room->order.head; l != NULL; l = l->next)
    {
      MucOccupant *viewer = l->data;
      GPtrArray *group;

      if (viewer == occ)
        continue;
      group = muc_room_jids_visible_to (room, viewer) ? with : without;
      for (guint i = 0; i < viewer->sessions->len; i++)
        g_ptr_array_add (group, viewer->sessions->pdata[i]);
    }
  if (with->len > 0)
    {
      g_autoptr(MynaStanza) p = muc_render_presence (occ, o, TRUE, FALSE);
      muc_fanout (room->muc, p, with);
    }
  if (without->len > 0)
    {
      g_autoptr(MynaStanza) p = muc_render_presence (occ, o, FALSE, FALSE);
      muc_fanout (room->muc, p, without);
    }
  muc_fanout (room->muc, self, occ->sessions);
}

void
muc_occupant_broadcast_presence (MucOccupant *occ, const int *codes, const char *actor_nick,
                                 const char *reason)
{
  MucPresenceOpts o = { .codes = codes, .actor_nick = actor_nick, .reason = reason };

  g_return_if_fail (occ != NULL);
  muc_presence_broadcast (occ, &o);
}

/* ---- occupants --------------------------------------------------------------------- */

/* @presence stripped of what the room sets itself: to, from, the muc
 * elements.  Returns: (transfer full) */
static MynaStanza *
muc_strip_presence (MynaStanza *presence)
{
  MynaStanza *p = myna_stanza_copy (presence);

  myna_stanza_set_attr (p, "to", NULL);
  myna_stanza_set_attr (p, "from", NULL);
  myna_stanza_set_attr (p, "type", NULL);
  myna_stanza_remove_children (p, "x", NS_MUC);
  myna_stanza_remove_children (p, "x", NS_MUC_USER);
  return p;
}

/* A new occupant @nick of @room for the session @real, in the tables. */
static MucOccupant *
muc_occupant_add (MucRoom *room, const char *nick, MynaJid *real, MucRole role,
                  MynaStanza *presence)
{
  MucOccupant *occ = g_new0 (MucOccupant, 1);

  occ->room = room;
  occ->nick = g_strdup (nick);
  occ->jid = myna_jid_with_resource (room->jid, nick, NULL);
  occ->bare = myna_jid_get_bare (real);
  occ->sessions = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_jid_unref);
  g_ptr_array_add (occ->sessions, myna_jid_ref (real));
  occ->role = role;
  occ->presence = muc_strip_presence (presence);
  occ->joined = g_get_real_time ();
  g_queue_push_tail (&room->order, occ);
  occ->link = room->order.tail;
  g_hash_table_insert (room->occupants, occ->nick, occ);
  muc_by_real_add (room, real, occ);
  return occ;
}

/* Takes @occ out of @room's tables and frees it; a temporary room (or
 * one never configured) left empty goes too.  Returns FALSE when the room
 * was freed. */
static gboolean
muc_occupant_drop (MucOccupant *occ)
{
  MucRoom *room = occ->room;

  for (guint i = 0; i < occ->sessions->len; i++)
    muc_by_real_remove (room, occ->sessions->pdata[i]);
  g_hash_table_remove (room->occupants, occ->nick);
  g_queue_delete_link (&room->order, occ->link);
  muc_occupant_free (occ);
  if (room->order.length == 0 && (!room->config.persistent || room->locked))
    {
      g_debug ("room %s is empty: gone", myna_jid_to_string (room->jid));
      if (room->saved)
        myna_kv_set (room->muc->storage, myna_host_get_name (room->muc->host), "",
                     MUC_ROOMS_STORE, room->local, NULL, NULL, NULL, NULL);
      muc_history_room_destroyed (room);
      g_hash_table_remove (room->muc->rooms, room->local);
      return FALSE;
    }
  return TRUE;
}

void
muc_occupant_remove (MucOccupant *occ, const int *codes, const char *actor_nick,
                     const char *reason)
{
  MucPresenceOpts o = { .unavailable = TRUE, .codes = codes, .actor_nick = actor_nick,
                        .reason = reason };

  g_return_if_fail (occ != NULL);
  muc_presence_broadcast (occ, &o);
  muc_occupant_drop (occ);
}

/* The leave of session @real of @occ (§7.14): the last session takes the
 * nick out of the room; an earlier one only gets its own unavailable. */
static void
muc_occupant_leave (MucOccupant *occ, MynaJid *real, MynaStanza *presence)
{
  MucPresenceOpts o = { .unavailable = TRUE,
                        .status = myna_stanza_get_child_text (presence, "status") };

  if (occ->sessions->len > 1)
    {
      g_autoptr(MynaStanza) self = muc_render_presence (occ, &o, TRUE, TRUE);

      muc_send_one (occ->room->muc, self, real);
      muc_by_real_remove (occ->room, real);
      for (guint i = 0; i < occ->sessions->len; i++)
        if (myna_jid_equal (occ->sessions->pdata[i], real))
          {
            g_ptr_array_remove_index (occ->sessions, i);
            break;
          }
      return;
    }
  g_debug ("%s leaves %s", myna_jid_to_string (real), myna_jid_to_string (occ->jid));
  muc_presence_broadcast (occ, &o);
  muc_occupant_drop (occ);
}

/* Whether @nick is usable: non-empty, not only spaces, within the limit. */
static gboolean
muc_nick_valid (Muc *muc, const char *nick)
{
  if (nick == NULL || nick[0] == '\0' || strlen (nick) > muc->max_nick_length)
    return FALSE;
  for (const char *p = nick; *p != '\0'; p++)
    if (!g_ascii_isspace (*p))
      return TRUE;
  return FALSE;
}

/* Whether @nick is registered (§7.10) by someone other than @bare. */
static gboolean
muc_nick_reserved_by_other (MucRoom *room, const char *nick, const char *bare)
{
  GHashTableIter it;
  gpointer key, value;

  if (g_hash_table_size (room->reserved_nicks) == 0)
    return FALSE;
  g_hash_table_iter_init (&it, room->reserved_nicks);
  while (g_hash_table_iter_next (&it, &key, &value))
    if (g_strcmp0 (value, nick) == 0 && g_strcmp0 (key, bare) != 0)
      return TRUE;
  return FALSE;
}

/* Sends the presence error @condition for a join or nick change. */
static void
muc_presence_error (MynaCall *call, MynaStanza *presence, MynaErrorType type,
                    const char *condition, const char *text)
{
  g_autoptr(MynaStanza) error = myna_stanza_new_error (presence, type, condition, text);

  g_debug ("presence from %s to %s refused: %s%s%s",
           myna_jid_to_string (myna_call_get_from (call)),
           myna_jid_to_string (myna_call_get_to (call)), condition,
           text != NULL ? ": " : "", text != NULL ? text : "");
  /* §7.2.x: the error presence carries the <x xmlns=muc/> back. */
  myna_stanza_append_take (error, myna_stanza_new ("x", NS_MUC));
  myna_call_send (call, error);
}

/* Sends @to (a session that just joined) the presence of every other
 * occupant, in join order: one stanza each. */
static void
muc_send_occupant_list (MucOccupant *joiner, MynaJid *to)
{
  MucRoom *room = joiner->room;
  gboolean visible = muc_room_jids_visible_to (room, joiner);
  MucPresenceOpts o = { 0 };

  for (GList *l = room->order.head; l != NULL; l = l->next)
    {
      MucOccupant *occ = l->data;
      g_autoptr(MynaStanza) p = NULL;

      if (occ == joiner)
        continue;
      p = muc_render_presence (occ, &o, visible, FALSE);
      muc_send_one (room->muc, p, to);
    }
}

/* Sends @to the subject (§7.2.15): the last one, or an empty one. */
static void
muc_send_subject (MucRoom *room, MynaJid *to)
{
  if (room->subject != NULL)
    muc_send_one (room->muc, room->subject, to);
  else
    {
      g_autoptr(MynaStanza) m = myna_stanza_new ("message", MYNA_NS_CLIENT);

      myna_stanza_set_attr (m, "type", "groupchat");
      myna_stanza_set_attr (m, "from", myna_jid_to_string (room->jid));
      myna_stanza_add_child (m, "subject", NULL);
      muc_send_one (room->muc, m, to);
    }
}

/* The join of session @real as @nick (§7.2), the room created when absent. */
static void
muc_join (Muc *muc, MynaCall *call, MynaStanza *presence, const char *local,
          const char *nick, MynaJid *real)
{
  MucRoom *room = muc_room_find (muc, local);
  MynaStanza *x = myna_stanza_get_child (presence, "x", NS_MUC);
  const char *bare = myna_jid_bare_string (real);
  gboolean created = FALSE;
  MucAffiliation affiliation;
  MucOccupant *occ;
  int self_codes[4];
  guint n = 0;

  if (!muc_nick_valid (muc, nick))
    {
      muc_presence_error (call, presence, MYNA_ERROR_TYPE_MODIFY, "jid-malformed",
                          "the nick is empty, blank or too long");
      return;
    }
  if (muc_session_rooms_full (muc, real))
    {
      g_autofree char *text = g_strdup_printf ("a session may be in at most %u rooms",
                                               muc->max_rooms_per_session);
      muc_presence_error (call, presence, MYNA_ERROR_TYPE_WAIT, "resource-constraint", text);
      return;
    }
  if (room == NULL)
    {
      g_autoptr(GError) error = NULL;

      room = muc_room_create (muc, local, real, &error);
      if (room == NULL)
        {
          muc_presence_error (call, presence, MYNA_ERROR_TYPE_CANCEL, error->message,
                              "this room does not exist and may not be created");
          return;
        }
      created = TRUE;
    }
  affiliation = muc_room_get_affiliation (room, real);
  occ = muc_room_find_occupant (room, nick);
  if (room->locked && !created && affiliation < MUC_AFFIL_OWNER)
    {
      muc_presence_error (call, presence, MYNA_ERROR_TYPE_CANCEL, "item-not-found",
                          "the room is locked until its owner configures it");
      return;
    }
  if (affiliation == MUC_AFFIL_OUTCAST)
    {
      muc_presence_error (call, presence, MYNA_ERROR_TYPE_AUTH, "forbidden",
                          "you are banned from this room");
      return;
    }
  if (occ != NULL && g_strcmp0 (myna_jid_bare_string (occ->bare), bare) != 0)
    {
      muc_presence_error (call, presence, MYNA_ERROR_TYPE_CANCEL, "conflict",
                          "that nick is in use");
      return;
    }
  if (occ == NULL && muc_nick_reserved_by_other (room, nick, bare))
    {
      muc_presence_error (call, presence, MYNA_ERROR_TYPE_CANCEL, "conflict",
                          "that nick is registered by someone else");
      return;
    }
  if (room->config.members_only && affiliation < MUC_AFFIL_MEMBER)
    {
      muc_presence_error (call, presence, MYNA_ERROR_TYPE_AUTH, "registration-required",
                          "the room is members-only");
      return;
    }
  if (room->config.password_protected && room->config.password != NULL
      && room->config.password[0] != '\0' && affiliation < MUC_AFFIL_OWNER
      && (x == NULL
          || g_strcmp0 (myna_stanza_get_child_text (x, "password"), room->config.password) != 0))
    {
      muc_presence_error (call, presence, MYNA_ERROR_TYPE_AUTH, "not-authorized",
                          "a password is required");
      return;
    }
  if (occ == NULL
      && (room->order.length >= muc->max_occupants
          || (room->order.length >= muc_room_limit (room) && affiliation < MUC_AFFIL_ADMIN)))
    {
      muc_presence_error (call, presence, MYNA_ERROR_TYPE_WAIT, "service-unavailable",
                          "the room is full");
      return;
    }

  if (occ != NULL)
    {
      /* Another session of the same user under the same nick (§7.2.8). */
      g_ptr_array_add (occ->sessions, myna_jid_ref (real));
      muc_by_real_add (room, real, occ);
      g_clear_pointer (&occ->presence, myna_stanza_unref);
      occ->presence = muc_strip_presence (presence);
    }
  else
    occ = muc_occupant_add (room, nick, real,
                            muc_admin_default_role (room, affiliation), presence);
  g_debug ("%s joins %s%s", myna_jid_to_string (real), myna_jid_to_string (occ->jid),
           created ? " (created)" : "");

  muc_send_occupant_list (occ, real);
  if (room->config.whois == MUC_WHOIS_ANYONE)
    self_codes[n++] = 100;
  if (room->config.archived && muc->archive != NULL)
    self_codes[n++] = 170;
  if (created)
    self_codes[n++] = 201;
  self_codes[n] = 0;
  MucPresenceOpts o = { .self_codes = self_codes };
  muc_presence_broadcast (occ, &o);
  muc_history_send (room, occ, real, x != NULL ? myna_stanza_get_child (x, "history", NULL) : NULL);
  muc_send_subject (room, real);
}

/* The nick change of @occ to @nick (§7.6): unavailable with 303 and the
 * new nick, then the presence under the new nick. */
static void
muc_change_nick (MucOccupant *occ, MynaCall *call, MynaStanza *presence, const char *nick)
{
  MucRoom *room = occ->room;
  MucOccupant *holder = muc_room_find_occupant (room, nick);
  const char *bare = myna_jid_bare_string (occ->bare);
  MucPresenceOpts gone = { .unavailable = TRUE, .codes = (const int[]) { 303, 0 },
                           .new_nick = nick };
  MucPresenceOpts back = { 0 };

  if (!muc_nick_valid (room->muc, nick))
    {
      muc_presence_error (call, presence, MYNA_ERROR_TYPE_MODIFY, "jid-malformed",
                          "the nick is empty, blank or too long");
      return;
    }
  if (holder != NULL || muc_nick_reserved_by_other (room, nick, bare))
    {
      muc_presence_error (call, presence, MYNA_ERROR_TYPE_CANCEL, "conflict",
                          holder != NULL ? "that nick is in use"
                                         : "that nick is registered by someone else");
      return;
    }
  g_debug ("%s in %s is now %s", occ->nick, myna_jid_to_string (room->jid), nick);
  muc_presence_broadcast (occ, &gone);
  g_hash_table_remove (room->occupants, occ->nick);
  g_free (occ->nick);
  occ->nick = g_strdup (nick);
  g_clear_pointer (&occ->jid, myna_jid_unref);
  occ->jid = myna_jid_with_resource (room->jid, nick, NULL);
  g_hash_table_insert (room->occupants, occ->nick, occ);
  g_clear_pointer (&occ->presence, myna_stanza_unref);
  occ->presence = muc_strip_presence (presence);
  muc_presence_broadcast (occ, &back);
}

/* ---- re-entrancy ---------------------------------------------------------------- */

static void
muc_deferred_free (MucDeferred *d)
{
  myna_jid_unref (d->from);
  g_free (d->local);
  myna_stanza_unref (d->presence);
  g_free (d);
}

void
muc_busy_enter (Muc *muc)
{
  g_return_if_fail (muc != NULL);
  muc->busy++;
}

void
muc_busy_leave (Muc *muc)
{
  g_return_if_fail (muc != NULL && muc->busy > 0);
  if (--muc->busy > 0)
    return;
  /* The leaves that came in meanwhile, each bracketed in turn (one may
   * cut off another session, whose leave queues behind it). */
  while (muc->deferred.length > 0)
    {
      MucDeferred *d = g_queue_pop_head (&muc->deferred);
      MucRoom *room = muc_room_find (muc, d->local);
      MucOccupant *occ = room != NULL ? muc_room_find_by_real (room, d->from) : NULL;

      muc->busy++;
      if (occ != NULL)
        muc_occupant_leave (occ, d->from, d->presence);
      muc->busy--;
      muc_deferred_free (d);
    }
}

/* presence/bare and presence/full: joins, updates, nick changes, leaves. */
static MynaResult muc_handle_presence (Muc *muc, MynaCall *call, MynaStanza *presence);

static MynaResult
muc_on_presence (MynaCall *call, MynaStanza *presence, gpointer data)
{
  Muc *muc = data;
  MynaJid *from = myna_call_get_from (call);
  MynaResult result;

  if (muc->busy > 0 && g_strcmp0 (myna_stanza_get_type (presence), "unavailable") == 0
      && from != NULL && !myna_jid_is_bare (from)
      && myna_jid_get_local (myna_call_get_to (call)) != NULL)
    {
      /* A session ending inside one of our writes: it leaves once the
       * write, and whatever walks the room around it, is done. */
      MucDeferred *d = g_new0 (MucDeferred, 1);

      d->from = myna_jid_ref (from);
      d->local = g_strdup (myna_jid_get_local (myna_call_get_to (call)));
      d->presence = myna_stanza_ref (presence);
      g_queue_push_tail (&muc->deferred, d);
      g_debug ("leave of %s from %s deferred: the room is busy", myna_jid_to_string (from),
               d->local);
      return MYNA_HANDLED;
    }
  muc_busy_enter (muc);
  result = muc_handle_presence (muc, call, presence);
  muc_busy_leave (muc);
  return result;
}

static MynaResult
muc_handle_presence (Muc *muc, MynaCall *call, MynaStanza *presence)
{
  MynaJid *to = myna_call_get_to (call);
  MynaJid *from = myna_call_get_from (call);
  const char *type = myna_stanza_get_type (presence);
  const char *local = myna_jid_get_local (to);
  const char *nick = myna_jid_get_resource (to);
  MucRoom *room = muc_room_find (muc, local);
  MucOccupant *occ;

  if (from == NULL || myna_jid_is_bare (from) || local == NULL)
    return MYNA_HANDLED;          /* only sessions join; the domain takes none */
  occ = room != NULL ? muc_room_find_by_real (room, from) : NULL;
  /* An error presence (a bounce) is not taken as a leave at once: a
   * bounce can come back while a broadcast walks the room.  One of the
   * kinds that mean the session is gone removes it later (333). */
  if (g_strcmp0 (type, "error") == 0)
    {
      muc_error_kick (muc, call, presence);
      return MYNA_HANDLED;
    }
  if (g_strcmp0 (type, "unavailable") == 0)
    {
      if (occ != NULL)
        muc_occupant_leave (occ, from, presence);
      return MYNA_HANDLED;
    }
  if (type != NULL)
    return MYNA_HANDLED;          /* subscriptions and probes: not for rooms */
  if (nick == NULL)
    {
      muc_presence_error (call, presence, MYNA_ERROR_TYPE_MODIFY, "jid-malformed",
                          "join with room@service/nick");
      return MYNA_HANDLED;
    }
  if (occ == NULL)
    muc_join (muc, call, presence, local, nick, from);
  else if (strcmp (occ->nick, nick) != 0)
    muc_change_nick (occ, call, presence, nick);
  else
    {
      /* A presence update (§7.7): broadcast as it is now. */
      g_clear_pointer (&occ->presence, myna_stanza_unref);
      occ->presence = muc_strip_presence (presence);
      muc_occupant_broadcast_presence (occ, NULL, NULL, NULL);
    }
  return MYNA_HANDLED;
}

/* ---- messages ---------------------------------------------------------------------- */

/* A groupchat message with <subject/> and no <body/> (§8.1). */
static void
muc_set_subject (MucOccupant *occ, MynaCall *call, MynaStanza *message)
{
  MucRoom *room = occ->room;
  const char *subject = myna_stanza_get_child_text (message, "subject");
  g_autoptr(MynaStanza) m = NULL;

  if (occ->role != MUC_ROLE_MODERATOR
      && !(room->config.change_subject && occ->role >= MUC_ROLE_PARTICIPANT))
    {
      muc_reply_error (call, message, MYNA_ERROR_TYPE_AUTH, "forbidden",
                       "you may not change the subject");
      return;
    }
  if (strlen (subject) > room->muc->max_subject_length)
    {
      g_autofree char *text = g_strdup_printf ("the subject is longer than %u bytes",
                                               room->muc->max_subject_length);
      muc_reply_error (call, message, MYNA_ERROR_TYPE_MODIFY, "not-acceptable", text);
      return;
    }
  m = myna_stanza_new ("message", MYNA_NS_CLIENT);
  myna_stanza_set_attr (m, "type", "groupchat");
  myna_stanza_set_attr (m, "from", myna_jid_to_string (occ->jid));
  if (myna_stanza_get_id (message) != NULL)
    myna_stanza_set_attr (m, "id", myna_stanza_get_id (message));
  myna_stanza_add_text_child (m, "subject", subject);
  g_clear_pointer (&room->subject, myna_stanza_unref);
  room->subject = myna_stanza_ref (m);
  g_debug ("%s changes the subject of %s", occ->nick, myna_jid_to_string (room->jid));
  muc_room_broadcast (room, m);
  if (room->config.persistent)
    muc_room_save (room);
}

/* message type=groupchat to the room (§7.4). */
static void
muc_groupchat (MucRoom *room, MynaCall *call, MynaStanza *message)
{
  MucOccupant *occ = muc_room_find_by_real (room, myna_call_get_from (call));
  g_autoptr(MynaStanza) m = NULL;

  if (occ == NULL)
    {
      muc_reply_error (call, message, MYNA_ERROR_TYPE_MODIFY, "not-acceptable",
                       "only occupants may send messages to the room");
      return;
    }
  if (occ->role < MUC_ROLE_PARTICIPANT)
    {
      muc_reply_error (call, message, MYNA_ERROR_TYPE_AUTH, "forbidden",
                       "visitors have no voice in this moderated room");
      return;
    }
  if (myna_stanza_get_child (message, "subject", NULL) != NULL
      && myna_stanza_get_child (message, "body", NULL) == NULL)
    {
      muc_set_subject (occ, call, message);
      return;
    }
  /* From the room's own idea of the sender: nothing the client put in it
   * names another occupant. */
  m = myna_stanza_copy (message);
  myna_stanza_set_attr (m, "to", NULL);
  myna_stanza_set_attr (m, "from", myna_jid_to_string (occ->jid));
  myna_stanza_remove_children (m, "x", NS_MUC_USER);
  muc_history_record (room, occ, m);
  muc_room_broadcast (room, m);
}

/* Whether @occ may send private messages under @room's allow_pm. */
static gboolean
muc_may_pm (MucRoom *room, MucOccupant *occ)
{
  switch (room->config.allow_pm)
    {
    case MUC_PM_ANYONE:       return TRUE;
    case MUC_PM_PARTICIPANTS: return occ->role >= MUC_ROLE_PARTICIPANT;
    case MUC_PM_MODERATORS:   return occ->role >= MUC_ROLE_MODERATOR;
    case MUC_PM_NONE:
    default:                  return FALSE;
    }
}

/* A message to room/nick (§7.5): a private message between occupants. */
static void
muc_private_message (MucRoom *room, const char *nick, MynaCall *call, MynaStanza *message)
{
  const char *type = myna_stanza_get_type (message);
  MucOccupant *sender = muc_room_find_by_real (room, myna_call_get_from (call));
  MucOccupant *target;
  g_autoptr(MynaStanza) m = NULL;

  if (g_strcmp0 (type, "groupchat") == 0)
    {
      muc_reply_error (call, message, MYNA_ERROR_TYPE_MODIFY, "bad-request",
                       "groupchat messages go to the room, not to an occupant");
      return;
    }
  if (sender == NULL)
    {
      muc_reply_error (call, message, MYNA_ERROR_TYPE_MODIFY, "not-acceptable",
                       "only occupants may send private messages");
      return;
    }
  if (!muc_may_pm (room, sender))
    {
      muc_reply_error (call, message, MYNA_ERROR_TYPE_CANCEL, "policy-violation",
                       "private messages are not allowed here");
      return;
    }
  target = muc_room_find_occupant (room, nick);
  if (target == NULL)
    {
      muc_reply_error (call, message, MYNA_ERROR_TYPE_CANCEL, "item-not-found",
                       "no occupant has that nick");
      return;
    }
  m = myna_stanza_copy (message);
  myna_stanza_set_attr (m, "to", NULL);
  myna_stanza_set_attr (m, "from", myna_jid_to_string (sender->jid));
  /* The room's own marker: a muc#user element the sender wrote (items
   * with real JIDs, status codes) would speak for the room. */
  myna_stanza_remove_children (m, "x", NS_MUC_USER);
  myna_stanza_add_child (m, "x", NS_MUC_USER);
  muc_occupant_send (target, m);
}

/* message/host, message/bare and message/full. */
static MynaResult
muc_handle_message (Muc *muc, MynaCall *call, MynaStanza *message)
{
  MynaJid *to = myna_call_get_to (call);
  const char *type = myna_stanza_get_type (message);
  const char *nick = myna_jid_get_resource (to);
  MucRoom *room;

  if (g_strcmp0 (type, "error") == 0)
    {
      muc_error_kick (muc, call, message);  /* an occupant's client bounced something */
      return MYNA_HANDLED;
    }
  if (myna_jid_get_local (to) == NULL)
    {
      muc_reply_error (call, message, MYNA_ERROR_TYPE_CANCEL, "service-unavailable",
                       "the service takes no messages");
      return MYNA_HANDLED;
    }
  room = muc_room_find (muc, myna_jid_get_local (to));
  if (room == NULL)
    {
      muc_reply_error (call, message, MYNA_ERROR_TYPE_CANCEL, "item-not-found",
                       "no such room");
      return MYNA_HANDLED;
    }
  if (nick != NULL)
    muc_private_message (room, nick, call, message);
  else if (g_strcmp0 (type, "groupchat") == 0)
    muc_groupchat (room, call, message);
  else if (!muc_admin_message (room, call, message))
    muc_reply_error (call, message, MYNA_ERROR_TYPE_MODIFY, "bad-request",
                     "a message to the room is groupchat, an invitation or a voice request");
  return MYNA_HANDLED;
}

/* The hook: muc_handle_message inside muc_busy_enter/leave. */
static MynaResult
muc_on_message (MynaCall *call, MynaStanza *message, gpointer data)
{
  Muc *muc = data;
  MynaResult result;

  muc_busy_enter (muc);
  result = muc_handle_message (muc, call, message);
  muc_busy_leave (muc);
  return result;
}

/* ---- IQs ------------------------------------------------------------------------------ */

static void
muc_forward_free (gpointer data)
{
  MucForward *f = data;

  g_free (f->sender);
  g_free (f->id);
  g_free (f->target);
  g_free (f);
}

/* The occupant's answer to a forwarded IQ, back to who asked, from the
 * occupant JID. */
static void
muc_forward_done (MynaModule *mod, MynaStanza *reply, const GError *error, gpointer data)
{
  MucForward *f = data;
  g_autoptr(MynaStanza) back = NULL;

  if (reply != NULL)
    {
      back = myna_stanza_copy (reply);
      myna_stanza_set_attr (back, "id", f->id);
    }
  else
    {
      back = myna_stanza_build ("<iq type='error' id='%s'><error type='wait'>"
                                "<recipient-unavailable xmlns='" NS_STANZAS "'/>"
                                "</error></iq>", f->id);
      if (back == NULL)
        return;
    }
  myna_stanza_set_attr (back, "from", f->target);
  myna_stanza_set_attr (back, "to", f->sender);
  myna_server_route (f->muc->server, back);
}

/* An IQ to room/nick (§7.2.x): a ping answered for the room (XEP-0410),
 * anything else forwarded to the occupant's first session. */
static void
muc_occupant_iq (MucRoom *room, const char *nick, MynaCall *call, MynaStanza *iq)
{
  const char *type = myna_stanza_get_type (iq);
  MynaStanza *payload = myna_stanza_first_element (iq);
  MucOccupant *sender, *target;
  MucForward *f;
  g_autoptr(MynaStanza) fwd = NULL;

  if (g_strcmp0 (type, "get") != 0 && g_strcmp0 (type, "set") != 0)
    return;                       /* answers not awaited: dropped */
  if (g_strcmp0 (myna_stanza_get_ns (payload), NS_PING) == 0
      && muc_disco_ping_iq (room, nick, call, iq))
    return;
  sender = muc_room_find_by_real (room, myna_call_get_from (call));
  if (sender == NULL)
    {
      muc_reply_error (call, iq, MYNA_ERROR_TYPE_MODIFY, "not-acceptable",
                       "only occupants may query occupants");
      return;
    }
  target = muc_room_find_occupant (room, nick);
  if (target == NULL)
    {
      muc_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "item-not-found",
                       "no occupant has that nick");
      return;
    }
  f = g_new0 (MucForward, 1);
  f->muc = room->muc;
  f->sender = g_strdup (myna_jid_to_string (myna_call_get_from (call)));
  f->id = g_strdup (myna_stanza_get_id (iq));
  f->target = g_strdup (myna_jid_to_string (target->jid));
  fwd = myna_stanza_copy (iq);
  myna_stanza_set_attr (fwd, "from", myna_jid_to_string (sender->jid));
  myna_stanza_set_attr (fwd, "to", myna_jid_to_string (target->sessions->pdata[0]));
  myna_module_send_iq (room->muc->mod, fwd, MUC_IQ_TIMEOUT_MS, muc_forward_done, f,
                       muc_forward_free);
}

/* An IQ get/set to the domain (@room NULL) or a room, by payload. */
static void
muc_service_iq (Muc *muc, MucRoom *room, gboolean at_room, MynaCall *call, MynaStanza *iq)
{
  MynaStanza *payload = myna_stanza_first_element (iq);
  const char *ns = myna_stanza_get_ns (payload);

  if (g_strcmp0 (ns, NS_PING) == 0)
    {
      if (at_room && room == NULL)
        muc_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "item-not-found", "no such room");
      else
        myna_call_reply_result (call, iq);
      return;
    }
  if (at_room && room == NULL)
    {
      muc_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "item-not-found", "no such room");
      return;
    }
  if (g_strcmp0 (ns, NS_DISCO_INFO) == 0)
    muc_disco_info_iq (muc, room, call, iq);
  else if (g_strcmp0 (ns, NS_DISCO_ITEMS) == 0)
    muc_disco_items_iq (muc, room, call, iq);
  else if (room != NULL && g_strcmp0 (ns, NS_MUC_ADMIN) == 0)
    muc_admin_iq (room, call, iq);
  else if (room != NULL && g_strcmp0 (ns, NS_MUC_OWNER) == 0)
    muc_owner_iq (room, call, iq);
  else if (room != NULL && g_strcmp0 (ns, NS_REGISTER) == 0)
    muc_register_iq (room, call, iq);
  else if (room != NULL && g_strcmp0 (ns, NS_MAM) == 0)
    muc_history_mam_iq (room, call, iq);
  else
    muc_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "service-unavailable", NULL);
}

/* iq/host, iq/bare and iq/full. */
static MynaResult
muc_handle_iq (Muc *muc, MynaCall *call, MynaStanza *iq)
{
  MynaJid *to = myna_call_get_to (call);
  const char *type = myna_stanza_get_type (iq);
  const char *local = myna_jid_get_local (to);
  const char *nick = myna_jid_get_resource (to);
  MucRoom *room = muc_room_find (muc, local);

  if (local != NULL && nick != NULL)
    {
      if (room == NULL)
        muc_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "item-not-found", "no such room");
      else
        muc_occupant_iq (room, nick, call, iq);
      return MYNA_HANDLED;
    }
  if (g_strcmp0 (type, "get") != 0 && g_strcmp0 (type, "set") != 0)
    return MYNA_HANDLED;          /* a result or error nobody waits for */
  muc_service_iq (muc, room, local != NULL, call, iq);
  return MYNA_HANDLED;
}

/* The hook: muc_handle_iq inside muc_busy_enter/leave. */
static MynaResult
muc_on_iq (MynaCall *call, MynaStanza *iq, gpointer data)
{
  Muc *muc = data;
  MynaResult result;

  muc_busy_enter (muc);
  result = muc_handle_iq (muc, call, iq);
  muc_busy_leave (muc);
  return result;
}

/* ---- names ------------------------------------------------------------------------------ */

static const char *const affiliation_names[] = { "outcast", "none", "member", "admin", "owner" };
static const char *const role_names[] = { "none", "visitor", "participant", "moderator" };

const char *
muc_affiliation_name (MucAffiliation a)
{
  g_return_val_if_fail (a >= MUC_AFFIL_OUTCAST && a <= MUC_AFFIL_OWNER, "none");
  return affiliation_names[a + 1];
}

int
muc_affiliation_parse (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (affiliation_names); i++)
    if (g_strcmp0 (name, affiliation_names[i]) == 0)
      return (int) i - 1;
  return -2;
}

const char *
muc_role_name (MucRole r)
{
  g_return_val_if_fail (r >= MUC_ROLE_NONE && r <= MUC_ROLE_MODERATOR, "none");
  return role_names[r];
}

int
muc_role_parse (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (role_names); i++)
    if (g_strcmp0 (name, role_names[i]) == 0)
      return (int) i;
  return -1;
}

/* ---- occupants whose client answers with an error ------------------------------ */

/* The stanza error conditions that mean an occupant's session is gone
 * (XEP-0045 §15 status 333; the list Prosody kicks on): a client or its
 * server answering a message or presence from the room with one of them
 * is taken out of the room. */
static const char *const muc_kick_conditions[] = {
  "gone", "internal-server-error", "item-not-found", "jid-malformed",
  "recipient-unavailable", "redirect", "remote-server-not-found",
  "remote-server-timeout", "service-unavailable", NULL
};

/* A session to take out of a room once the stanza being handled is done
 * (its error may have come back while a broadcast walked the room). */
typedef struct {
  Muc       *muc;
  MynaTimer *timer;
  char      *room;        /* the room's local part */
  MynaJid   *real;        /* the session's real full JID */
  char      *condition;   /* why, for the log */
} MucKick;

/* Frees a MucKick (the kicks table's destroy), its timer with it. */
static void
muc_kick_free (gpointer data)
{
  MucKick *k = data;

  myna_timer_free (k->timer);
  g_free (k->room);
  myna_jid_unref (k->real);
  g_free (k->condition);
  g_free (k);
}

/* The defined condition of the error stanza @stanza, or NULL when it has
 * none (a malformed error). */
static const char *
muc_error_condition (MynaStanza *stanza)
{
  MynaStanza *error = myna_stanza_get_child (stanza, "error", NULL);

  for (guint i = 0; error != NULL && i < myna_stanza_get_n_children (error); i++)
    {
      MynaStanza *child = myna_stanza_get_child_nth (error, i);

      if (!myna_stanza_is_text (child) && g_strcmp0 (myna_stanza_get_ns (child), NS_STANZAS) == 0
          && g_strcmp0 (myna_stanza_get_name (child), "text") != 0)
        return myna_stanza_get_name (child);
    }
  return NULL;
}

/* Takes session @real of @occ out of the room (§15 status 333, with 307
 * as a kick): the last session takes the nick out, everyone seeing its
 * unavailable presence; an earlier one alone gets its own. */
static void
muc_occupant_kick_session (MucOccupant *occ, MynaJid *real)
{
  static const int codes[] = { 307, 333, 0 };

  if (occ->sessions->len > 1)
    {
      MucPresenceOpts o = { .unavailable = TRUE, .codes = codes };
      g_autoptr(MynaStanza) self = muc_render_presence (occ, &o, TRUE, TRUE);
      g_autoptr(MynaJid) gone = myna_jid_ref (real);

      muc_by_real_remove (occ->room, gone);
      for (guint i = 0; i < occ->sessions->len; i++)
        if (myna_jid_equal (occ->sessions->pdata[i], gone))
          {
            g_ptr_array_remove_index (occ->sessions, i);
            break;
          }
      muc_send_one (occ->room->muc, self, gone);
      return;
    }
  muc_occupant_remove (occ, codes, NULL, NULL);
}

/* The timer of a MucKick: the session, if still in the room, goes. */
static void
muc_kick_fire (gpointer data)
{
  MucKick *k = data;
  Muc *muc = k->muc;
  MucRoom *room = muc_room_find (muc, k->room);
  MucOccupant *occ = room != NULL ? muc_room_find_by_real (room, k->real) : NULL;

  if (occ != NULL)
    {
      g_info ("%s: %s answered with %s: removed from the room (333)",
              myna_jid_to_string (room->jid), myna_jid_to_string (k->real), k->condition);
      muc_occupant_kick_session (occ, k->real);
    }
  g_hash_table_remove (muc->kicks, k);
}

/* A message or presence of type error to the room or an occupant JID:
 * when it comes from an occupant's session with a condition meaning the
 * session is gone (or none at all), that session leaves the room with
 * 333 once the current stanza is done; any other error is dropped. */
static void
muc_error_kick (Muc *muc, MynaCall *call, MynaStanza *stanza)
{
  MynaJid *from = myna_call_get_from (call);
  const char *local = myna_jid_get_local (myna_call_get_to (call));
  const char *condition = muc_error_condition (stanza);
  MucRoom *room;
  MucKick *k;

  if (muc->closing)
    return;
  room = muc_room_find (muc, local);
  if (room == NULL || from == NULL || muc_room_find_by_real (room, from) == NULL)
    return;
  if (condition != NULL && !g_strv_contains (muc_kick_conditions, condition))
    {
      g_debug ("%s: %s answered with %s: kept", myna_jid_to_string (room->jid),
               myna_jid_to_string (from), condition);
      return;
    }
  k = g_new0 (MucKick, 1);
  k->muc = muc;
  k->room = g_strdup (room->local);
  k->real = myna_jid_ref (from);
  k->condition = g_strdup (condition != NULL ? condition : "a malformed error");
  k->timer = myna_timer_new (muc_kick_fire, k);
  g_hash_table_add (muc->kicks, k);
  myna_timer_start (k->timer, 0);
}

/* ---- load, unload and hot reload -------------------------------------------------- */

/* The version of muc_save's state. */
#define MUC_STATE_VERSION 1

/* Frees the service (on unload, after its pending callbacks): rooms and
 * occupants go without a word more (muc_unload told them). */
static void
muc_free (gpointer data)
{
  Muc *muc = data;

  g_clear_pointer (&muc->kicks, g_hash_table_unref);
  muc_disco_fini (muc);
  g_hash_table_unref (muc->rooms);
  g_clear_pointer (&muc->session_rooms, g_hash_table_unref);
  g_clear_pointer (&muc->owned, g_hash_table_unref);
  muc_history_fini (muc);
  muc_config_clear (&muc->defaults);
  g_free (muc->room_creation);
  g_clear_pointer (&muc->admins, g_ptr_array_unref);
  g_free (muc);
}

/* The unload.  A reload's (muc_save ran) leaves the occupants to the
 * new instance.  Otherwise the service goes for good: each session of
 * each occupant gets its own unavailable presence with 332 (XEP-0045
 * §15, system shutdown) and 110, one stanza per occupant (the others'
 * unavailable presences would say nothing more: everyone is out). */
static void
muc_unload (MynaModule *mod)
{
  Muc *muc = myna_module_get_data (mod);
  MucPresenceOpts o = { .unavailable = TRUE, .codes = (const int[]) { 332, 0 } };
  GHashTableIter it;
  gpointer value;
  guint n = 0;

  if (muc == NULL)
    return;
  muc->closing = TRUE;
  g_hash_table_remove_all (muc->kicks);
  if (muc->reloading)
    return;
  g_hash_table_iter_init (&it, muc->rooms);
  while (g_hash_table_iter_next (&it, NULL, &value))
    for (GList *l = ((MucRoom *) value)->order.head; l != NULL; l = l->next)
      {
        MucOccupant *occ = l->data;
        g_autoptr(MynaStanza) p = muc_render_presence (occ, &o, TRUE, TRUE);

        /* Not muc_fanout: its timer for gone sessions would outlive us. */
        myna_server_fanout (muc->server, p, occ->sessions, NULL);
        n++;
      }
  if (n > 0)
    g_info ("%s: the service stops: %u occupant(s) told (332)",
            myna_host_get_name (muc->host), n);
}

/* The state of @occ: (nick, real full JIDs, role, joined, presence XML). */
static GVariant *
muc_occupant_save (MucOccupant *occ)
{
  g_autoptr(GPtrArray) jids = g_ptr_array_new ();
  g_autofree char *presence = occ->presence != NULL ? myna_stanza_to_string (occ->presence)
                                                    : g_strdup ("");

  for (guint i = 0; i < occ->sessions->len; i++)
    g_ptr_array_add (jids, (gpointer) myna_jid_to_string (occ->sessions->pdata[i]));
  g_ptr_array_add (jids, NULL);
  return g_variant_new ("(s^asixs)", occ->nick, (const char *const *) jids->pdata,
                        (gint32) occ->role, occ->joined, presence);
}

/* Before a reload: every room as it is in memory, as a dictionary per
 * room: "local", "room" (the stored form, muc_room_serialise, which
 * temporary rooms get too), "locked", "saved", "occupants" (in join
 * order), "history" and "admin" (the other files' state, when any). */
static GVariant *
muc_save (MynaModule *mod)
{
  Muc *muc = myna_module_get_data (mod);
  g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT (NULL);
  GVariantBuilder rooms;
  GHashTableIter it;
  gpointer value;

  g_variant_builder_init (&rooms, G_VARIANT_TYPE ("aa{sv}"));
  g_hash_table_iter_init (&it, muc->rooms);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      MucRoom *room = value;
      g_auto(GVariantDict) r = G_VARIANT_DICT_INIT (NULL);
      g_autofree char *text = muc_room_serialise (room);
      GVariantBuilder occs;
      GVariant *history = muc_history_save (room);
      GVariant *admin = muc_admin_room_save (room);

      g_variant_dict_insert (&r, "local", "s", room->local);
      g_variant_dict_insert (&r, "room", "s", text);
      g_variant_dict_insert (&r, "locked", "b", room->locked);
      g_variant_dict_insert (&r, "saved", "b", room->saved);
      g_variant_builder_init (&occs, G_VARIANT_TYPE ("a(sasixs)"));
      for (GList *l = room->order.head; l != NULL; l = l->next)
        g_variant_builder_add_value (&occs, muc_occupant_save (l->data));
      g_variant_dict_insert_value (&r, "occupants", g_variant_builder_end (&occs));
      if (history != NULL)
        g_variant_dict_insert_value (&r, "history", history);
      if (admin != NULL)
        g_variant_dict_insert_value (&r, "admin", admin);
      g_variant_builder_add_value (&rooms, g_variant_dict_end (&r));
    }
  g_variant_dict_insert (&dict, "version", "u", (guint32) MUC_STATE_VERSION);
  g_variant_dict_insert_value (&dict, "rooms", g_variant_builder_end (&rooms));
  muc->reloading = TRUE;
  g_info ("%s: %u room(s) saved for the reload", myna_host_get_name (muc->host),
          g_hash_table_size (muc->rooms));
  return g_variant_dict_end (&dict);
}

/* Puts a saved occupant back into @room; FALSE (logged) when unusable. */
static gboolean
muc_occupant_restore (MucRoom *room, GVariant *v)
{
  const char *nick, *presence;
  g_autofree const char **jids = NULL;
  gint32 role;
  gint64 joined;
  MucOccupant *occ;

  g_variant_get (v, "(&s^a&six&s)", &nick, &jids, &role, &joined, &presence);
  if (jids[0] == NULL || role < MUC_ROLE_VISITOR || role > MUC_ROLE_MODERATOR
      || g_hash_table_contains (room->occupants, nick))
    {
      g_warning ("room %s: saved occupant %s unusable: dropped", room->local, nick);
      return FALSE;
    }
  occ = g_new0 (MucOccupant, 1);
  occ->room = room;
  occ->nick = g_strdup (nick);
  occ->jid = myna_jid_with_resource (room->jid, nick, NULL);
  occ->sessions = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_jid_unref);
  for (guint i = 0; jids[i] != NULL; i++)
    {
      MynaJid *real = myna_jid_parse (jids[i], NULL);

      if (real == NULL || g_hash_table_contains (room->by_real, myna_jid_to_string (real)))
        {
          g_clear_pointer (&real, myna_jid_unref);
          continue;
        }
      g_ptr_array_add (occ->sessions, real);
      g_hash_table_insert (room->by_real, g_strdup (myna_jid_to_string (real)), occ);
    }
  if (occ->sessions->len == 0 || occ->jid == NULL)
    {
      g_warning ("room %s: saved occupant %s has no usable JID: dropped", room->local, nick);
      for (guint i = 0; i < occ->sessions->len; i++)
        g_hash_table_remove (room->by_real, myna_jid_to_string (occ->sessions->pdata[i]));
      muc_occupant_free (occ);
      return FALSE;
    }
  occ->bare = myna_jid_get_bare (occ->sessions->pdata[0]);
  occ->role = (MucRole) role;
  occ->joined = joined;
  occ->presence = presence[0] != '\0' ? myna_stanza_parse (presence, -1, NULL) : NULL;
  g_queue_push_tail (&room->order, occ);
  occ->link = room->order.tail;
  g_hash_table_insert (room->occupants, occ->nick, occ);
  return TRUE;
}

/* Puts one saved room back (replacing the copy load read from the
 * store, if any). */
static void
muc_room_restore (Muc *muc, GVariant *v)
{
  g_auto(GVariantDict) r = G_VARIANT_DICT_INIT (v);
  g_autoptr(GVariant) occs = NULL;
  g_autoptr(GVariant) history = NULL;
  g_autoptr(GVariant) admin = NULL;
  const char *local = NULL, *text = NULL;
  gboolean locked = FALSE, saved = FALSE;
  MucRoom *room;
  GVariantIter it;
  GVariant *occ;

  if (!g_variant_dict_lookup (&r, "local", "&s", &local)
      || !g_variant_dict_lookup (&r, "room", "&s", &text))
    {
      g_warning ("muc: a saved room without its name or state: dropped");
      return;
    }
  room = muc_room_deserialise (muc, local, text);
  if (room == NULL)
    return;
  g_variant_dict_lookup (&r, "locked", "b", &locked);
  g_variant_dict_lookup (&r, "saved", "b", &saved);
  room->locked = locked;
  room->saved = saved;
  g_hash_table_replace (muc->rooms, g_strdup (room->local), room);
  occs = g_variant_dict_lookup_value (&r, "occupants", G_VARIANT_TYPE ("a(sasixs)"));
  if (occs != NULL)
    {
      g_variant_iter_init (&it, occs);
      while ((occ = g_variant_iter_next_value (&it)) != NULL)
        {
          muc_occupant_restore (room, occ);
          g_variant_unref (occ);
        }
    }
  history = g_variant_dict_lookup_value (&r, "history", NULL);
  if (history != NULL)
    muc_history_restore (room, history);
  else if (room->saved)
    muc_history_room_loaded (room);
  admin = g_variant_dict_lookup_value (&r, "admin", NULL);
  if (admin != NULL)
    muc_admin_room_restore (room, admin);
}

/* After a reload's load: the rooms muc_save kept, as they were. */
static void
muc_restore (MynaModule *mod, GVariant *state)
{
  Muc *muc = myna_module_get_data (mod);
  g_autoptr(GVariant) rooms = NULL;
  guint32 version = 0;
  GVariantIter it;
  GVariant *room;

  if (!g_variant_is_of_type (state, G_VARIANT_TYPE_VARDICT)
      || !g_variant_lookup (state, "version", "u", &version) || version != MUC_STATE_VERSION)
    {
      g_warning ("muc: saved state of type %s (version %u) ignored: occupants are lost",
                 g_variant_get_type_string (state), version);
      return;
    }
  rooms = g_variant_lookup_value (state, "rooms", G_VARIANT_TYPE ("aa{sv}"));
  if (rooms == NULL)
    return;
  g_variant_iter_init (&it, rooms);
  while ((room = g_variant_iter_next_value (&it)) != NULL)
    {
      muc_room_restore (muc, room);
      g_variant_unref (room);
    }
  g_info ("%s: %" G_GSIZE_FORMAT " room(s) restored after the reload",
          myna_host_get_name (muc->host),
          g_variant_n_children (rooms));
}

static gboolean
muc_load (MynaModule *mod, GError **error)
{
  Muc *muc = g_new0 (Muc, 1);
  MynaService *archive;

  muc->mod = mod;
  muc->host = myna_module_get_host (mod);
  muc->server = myna_module_get_server (mod);
  muc->storage = myna_module_get_storage (mod);
  muc->rooms = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                      (GDestroyNotify) muc_room_free);
  muc->kicks = g_hash_table_new_full (NULL, NULL, muc_kick_free, NULL);
  muc->session_rooms = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  muc->owned = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  muc_settings_apply (muc, myna_module_get_config (mod));
  archive = myna_module_use (mod, MYNA_ARCHIVE_SERVICE, 1, NULL);
  if (archive != NULL && myna_service_get_table (archive) != NULL)
    muc->archive = archive;
  myna_module_set_data (mod, muc, muc_free);
  if (!muc_history_init (muc, error) || !muc_rooms_load (muc, error)
      || !muc_disco_init (muc, error))
    return FALSE;
  myna_module_hook (mod, MYNA_EVENT_PRESENCE_BARE, 0, muc_on_presence, muc, NULL);
  myna_module_hook (mod, MYNA_EVENT_PRESENCE_FULL, 0, muc_on_presence, muc, NULL);
  myna_module_hook (mod, MYNA_EVENT_PRESENCE_HOST, 0, muc_on_presence, muc, NULL);
  myna_module_hook (mod, MYNA_EVENT_MESSAGE_HOST, 0, muc_on_message, muc, NULL);
  myna_module_hook (mod, MYNA_EVENT_MESSAGE_BARE, 0, muc_on_message, muc, NULL);
  myna_module_hook (mod, MYNA_EVENT_MESSAGE_FULL, 0, muc_on_message, muc, NULL);
  myna_module_hook (mod, MYNA_EVENT_IQ_HOST, 0, muc_on_iq, muc, NULL);
  myna_module_hook (mod, MYNA_EVENT_IQ_BARE, 0, muc_on_iq, muc, NULL);
  myna_module_hook (mod, MYNA_EVENT_IQ_FULL, 0, muc_on_iq, muc, NULL);
  if (!myna_host_is_component (muc->host))
    g_warning ("muc serves %s, which is not a [component:] domain: its users' JIDs and "
               "the rooms' would collide", myna_host_get_name (muc->host));
  return TRUE;
}

MYNA_MODULE_DEFINE (muc,
  .version = "0.2",
  .description = "multi-user chat (XEP-0045) serving a component domain",
  .serves  = MYNA_STRV (NS_MUC),
  .features = MYNA_STRV (NS_MUC),
  .mode    = MYNA_MODULE_EAGER,
  .config  = MYNA_CONFIG_KEYS (
      MYNA_CONFIG_STRING (MucSettings, room_creation, "local",
                          "who may create rooms: anyone, local (accounts of this "
                          "server's hosts) or admins"),
      MYNA_CONFIG_STRING (MucSettings, admins, "",
                          "bare JIDs (comma or space separated) owning every room"),
      MYNA_CONFIG_INT (MucSettings, max_rooms_per_user, "100", 0, 1000000,
                       "rooms one user may own (0: unlimited; admins exempt)"),
      MYNA_CONFIG_INT (MucSettings, max_occupants, "10000", 1, 1000000,
                       "no room holds more occupants, whatever its max_users"),
      MYNA_CONFIG_INT (MucSettings, max_history_length, "100", 0, 100000,
                       "the largest history_length a room may have"),
      MYNA_CONFIG_INT (MucSettings, max_subject_length, "1024", 1, 1048576,
                       "the longest subject, in bytes"),
      MYNA_CONFIG_INT (MucSettings, max_nick_length, "64", 1, 1023,
                       "the longest nick, in bytes"),
      MYNA_CONFIG_STRING (MucSettings, default_name, "",
                          "a new room's name (empty: the room's local part)"),
      MYNA_CONFIG_BOOL (MucSettings, default_persistent, "false",
                        "new rooms are persistent"),
      MYNA_CONFIG_BOOL (MucSettings, default_public, "true",
                        "new rooms are listed in disco#items"),
      MYNA_CONFIG_BOOL (MucSettings, default_members_only, "false",
                        "new rooms admit members only"),
      MYNA_CONFIG_BOOL (MucSettings, default_moderated, "false",
                        "new rooms are moderated"),
      MYNA_CONFIG_STRING (MucSettings, default_whois, "moderators",
                          "who sees real JIDs in new rooms: moderators or anyone"),
      MYNA_CONFIG_BOOL (MucSettings, default_change_subject, "false",
                        "participants may change the subject of new rooms"),
      MYNA_CONFIG_BOOL (MucSettings, default_allow_invites, "false",
                        "participants may invite others to new rooms"),
      MYNA_CONFIG_STRING (MucSettings, default_allow_pm, "anyone",
                          "who may send private messages in new rooms: anyone, "
                          "participants, moderators or none"),
      MYNA_CONFIG_BOOL (MucSettings, default_voice_requests, "true",
                        "visitors may request voice in new rooms"),
      MYNA_CONFIG_INT (MucSettings, default_history_length, "20", 0, 100000,
                       "messages of history a new room sends on join"),
      MYNA_CONFIG_INT (MucSettings, default_max_users, "0", 0, 1000000,
                       "a new room's occupant limit (0: max_occupants)"),
      MYNA_CONFIG_BOOL (MucSettings, default_archived, "true",
                        "new rooms are archived (when the mam module runs)"),
      MYNA_CONFIG_INT (MucSettings, max_rooms_per_session, "1000", 0, 1000000,
                       "rooms one client session may be in at once (0: unlimited; "
                       "admins exempt)")),
  .config_size = sizeof (MucSettings),
  .load    = muc_load,
  .unload  = muc_unload,
  .save    = muc_save,
  .restore = muc_restore);
