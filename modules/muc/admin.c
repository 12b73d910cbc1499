/* admin.c: roles and affiliations, room configuration, registration,
 * invitations and voice requests (XEP-0045 §7.8, §7.10, §7.13, §8–§10).
 *
 * muc#admin lists are read and changed here with the XEP's privilege
 * rules; a change request of several items is checked whole before any
 * of it is applied (all or nothing).  Each applied change reaches the
 * occupants present (presence with the new item, or removal with 301,
 * 307, 321, 322) and the room is saved.  muc#owner serves the
 * muc#roomconfig form, the instant room and destruction; jabber:iq:register
 * reserves nicks; messages to the room carry invitations, declines, voice
 * requests and their approval. */
#include "muc.h"

#include <string.h>

/* A visitor may ask for voice again after this long (µs). */
#define ADMIN_VOICE_REQUEST_INTERVAL (30 * G_USEC_PER_SEC)
/* The most <invite/> elements one message may hold: each is a message
 * routed and, in a members-only room, a membership stored. */
#define ADMIN_MAX_INVITES 20

/* admin.c's per-room state (room->admin). */
typedef struct {
  GHashTable *voice_requests;   /* char* nick → gint64* time of its last request */
} AdminRoom;

/* One change of a muc#admin set, checked before any is applied. */
typedef struct {
  gboolean        is_role;      /* a role change (by nick) or an affiliation one (by JID) */
  char           *nick;         /* role change: the target's nick;
                                 * affiliation change: the reserved nick to set
                                 * ("" clears it) or NULL to leave it */
  MucRole         role;
  char           *bare;         /* affiliation change: the target's bare JID */
  MucAffiliation  affiliation;
  char           *reason;       /* or NULL */
} AdminChange;

/* Frees one AdminChange. */
static void
admin_change_free (gpointer data)
{
  AdminChange *c = data;

  g_free (c->nick);
  g_free (c->bare);
  g_free (c->reason);
  g_free (c);
}

/* The per-room state, created on first use. */
static AdminRoom *
admin_room (MucRoom *room)
{
  if (room->admin == NULL)
    {
      AdminRoom *ar = g_new0 (AdminRoom, 1);

      ar->voice_requests = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
      room->admin = ar;
    }
  return room->admin;
}

/* Answers @stanza with an error, logging why at debug level. */
static void
admin_error (MucRoom *room, MynaCall *call, MynaStanza *stanza, MynaErrorType type,
             const char *condition, const char *text)
{
  g_debug ("%s: %s from %s refused: %s%s%s", room->local, myna_stanza_get_name (stanza),
           myna_jid_to_string (myna_call_get_from (call)), condition,
           text != NULL ? ": " : "", text != NULL ? text : "");
  myna_call_reply_error (call, stanza, type, condition, text);
}

/* The stored affiliation of bare JID @bare (service admins not counted). */
static MucAffiliation
admin_stored_affiliation (MucRoom *room, const char *bare)
{
  return GPOINTER_TO_INT (g_hash_table_lookup (room->affiliations, bare));
}

/* The effective affiliation of bare JID @bare (service admins are owners). */
static MucAffiliation
admin_affiliation_of (MucRoom *room, const char *bare)
{
  g_autoptr(MynaJid) jid = myna_jid_parse (bare, NULL);

  if (jid == NULL)
    return admin_stored_affiliation (room, bare);
  return muc_room_get_affiliation (room, jid);
}

/* The occupants whose real bare JID is @bare (borrowed, usually one). */
static GPtrArray *
admin_occupants_of (MucRoom *room, const char *bare)
{
  g_autoptr(GPtrArray) all = muc_room_list_occupants (room);
  GPtrArray *found = g_ptr_array_new ();

  for (guint i = 0; i < all->len; i++)
    {
      MucOccupant *occ = all->pdata[i];

      if (g_strcmp0 (myna_jid_bare_string (occ->bare), bare) == 0)
        g_ptr_array_add (found, occ);
    }
  return found;
}

/* The occupant @from (a real full JID) is, or NULL; a sender whose
 * resource did not join but whose bare JID holds a nick counts as that
 * occupant (its other session). */
static MucOccupant *
admin_sender_occupant (MucRoom *room, MynaJid *from)
{
  MucOccupant *occ = muc_room_find_by_real (room, from);

  if (occ == NULL)
    {
      g_autoptr(GPtrArray) mine = admin_occupants_of (room, myna_jid_bare_string (from));

      if (mine->len > 0)
        occ = mine->pdata[0];
    }
  return occ;
}

/* The number of stored owners. */
static guint
admin_count_owners (MucRoom *room)
{
  GHashTableIter it;
  gpointer value;
  guint n = 0;

  g_hash_table_iter_init (&it, room->affiliations);
  while (g_hash_table_iter_next (&it, NULL, &value))
    if (GPOINTER_TO_INT (value) == MUC_AFFIL_OWNER)
      n++;
  return n;
}

/* Sorts borrowed char* pointers of a GPtrArray. */
static gint
admin_compare_strings (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const char *const *) a, *(const char *const *) b);
}

/* The bare JIDs of one stored affiliation, sorted (transfer container,
 * strings borrowed from the table). */
static GPtrArray *
admin_list_affiliated (MucRoom *room, MucAffiliation affiliation)
{
  GPtrArray *list = g_ptr_array_new ();
  GHashTableIter it;
  gpointer key, value;

  g_hash_table_iter_init (&it, room->affiliations);
  while (g_hash_table_iter_next (&it, &key, &value))
    if (GPOINTER_TO_INT (value) == affiliation)
      g_ptr_array_add (list, key);
  g_ptr_array_sort (list, admin_compare_strings);
  return list;
}

/* Sorts occupants by nick. */
static gint
admin_compare_occupants (gconstpointer a, gconstpointer b)
{
  const MucOccupant *x = *(const MucOccupant *const *) a;
  const MucOccupant *y = *(const MucOccupant *const *) b;

  return g_strcmp0 (x->nick, y->nick);
}

/* Sends @stanza (no to) to every session of every occupant @filter
 * accepts (all with @filter NULL). */
static void
admin_send_to_occupants (MucRoom *room, MynaStanza *stanza,
                         gboolean (*filter) (MucOccupant *occ))
{
  g_autoptr(GPtrArray) all = muc_room_list_occupants (room);
  g_autoptr(GPtrArray) to = g_ptr_array_new ();

  for (guint i = 0; i < all->len; i++)
    {
      MucOccupant *occ = all->pdata[i];

      if (filter != NULL && !filter (occ))
        continue;
      for (guint j = 0; j < occ->sessions->len; j++)
        g_ptr_array_add (to, occ->sessions->pdata[j]);
    }
  if (to->len > 0)
    muc_fanout (room->muc, stanza, to);
}

/* Whether @occ is a moderator (admin_send_to_occupants filter). */
static gboolean
admin_is_moderator (MucOccupant *occ)
{
  return occ->role == MUC_ROLE_MODERATOR;
}

/* Takes @occ out of the room with @code; TRUE when that destroyed the
 * room (a temporary room left empty): the caller must not touch it. */
static gboolean
admin_remove (MucRoom *room, MucOccupant *occ, int code, const char *actor_nick,
              const char *reason)
{
  const int codes[] = { code, 0 };
  gboolean last = (!room->config.persistent || room->locked)
                  && g_hash_table_size (room->occupants) <= 1;

  muc_occupant_remove (occ, codes, actor_nick, reason);
  return last;
}

/* ---- roles ---------------------------------------------------------------- */

MucRole
muc_admin_default_role (MucRoom *room, MucAffiliation affiliation)
{
  g_return_val_if_fail (room != NULL, MUC_ROLE_NONE);

  if (affiliation >= MUC_AFFIL_ADMIN)
    return MUC_ROLE_MODERATOR;
  if (affiliation == MUC_AFFIL_OUTCAST)
    return MUC_ROLE_NONE;
  if (affiliation == MUC_AFFIL_NONE && room->config.members_only)
    return MUC_ROLE_NONE;
  if (room->config.moderated && affiliation < MUC_AFFIL_MEMBER)
    return MUC_ROLE_VISITOR;
  return MUC_ROLE_PARTICIPANT;
}

/* Sends @viewer's sessions the presence of every other occupant again,
 * with real JIDs when it may now see them, without when it no longer
 * may: in a semi-anonymous room that changes with the moderator role. */
static void
admin_resend_occupants (MucOccupant *viewer)
{
  MucRoom *room = viewer->room;
  gboolean visible = muc_room_jids_visible_to (room, viewer);
  g_autoptr(GPtrArray) all = muc_room_list_occupants (room);

  for (guint i = 0; i < all->len; i++)
    {
      MucOccupant *occ = all->pdata[i];
      g_autoptr(MynaStanza) p = NULL;
      MynaStanza *x, *item;

      if (occ == viewer)
        continue;
      p = occ->presence != NULL ? myna_stanza_copy (occ->presence)
                                : myna_stanza_new ("presence", MYNA_NS_CLIENT);
      myna_stanza_set_attr (p, "from", myna_jid_to_string (occ->jid));
      x = myna_stanza_add_child (p, "x", NS_MUC_USER);
      item = myna_stanza_add_child (x, "item", NULL);
      myna_stanza_set_attr (item, "affiliation", muc_affiliation_name (
                            muc_room_get_affiliation (room, occ->bare)));
      myna_stanza_set_attr (item, "role", muc_role_name (occ->role));
      if (visible && occ->sessions->len > 0)
        myna_stanza_set_attr (item, "jid", myna_jid_to_string (occ->sessions->pdata[0]));
      muc_occupant_send (viewer, p);
    }
}

/* Gives @occ @role and broadcasts its presence; in a semi-anonymous room
 * a moderator role gained or lost also changes what it sees of the
 * others (Prosody does the same). */
static void
admin_change_role (MucOccupant *occ, MucRole role, const char *actor_nick, const char *reason)
{
  gboolean was_moderator = occ->role == MUC_ROLE_MODERATOR;

  occ->role = role;
  muc_occupant_broadcast_presence (occ, NULL, actor_nick, reason);
  if (occ->room->config.whois != MUC_WHOIS_ANYONE
      && was_moderator != (role == MUC_ROLE_MODERATOR))
    admin_resend_occupants (occ);
}

void
muc_admin_set_role (MucOccupant *occ, MucRole role, const char *actor_nick,
                    const char *reason)
{
  static const int kicked[] = { 307, 0 };

  g_return_if_fail (occ != NULL);

  if (role == MUC_ROLE_NONE)
    {
      g_info ("%s: %s kicked by %s", occ->room->local, occ->nick,
              actor_nick != NULL ? actor_nick : "the service");
      muc_occupant_remove (occ, kicked, actor_nick, reason);
      return;
    }
  if (occ->role == role)
    return;
  g_debug ("%s: %s is now %s", occ->room->local, occ->nick, muc_role_name (role));
  admin_change_role (occ, role, actor_nick, reason);
}

/* The role an occupant holding @current keeps after its affiliation went
 * from @old to @now: a loss falls back to the new affiliation's default
 * role, a gain never lowers it. */
static MucRole
admin_role_after (MucRoom *room, MucRole current, MucAffiliation old, MucAffiliation now)
{
  MucRole def = muc_admin_default_role (room, now);

  if (now < old)
    return def;
  return MAX (current, def);
}

/* ---- affiliation changes -------------------------------------------------- */

/* Sends @bare an invitation from the room on behalf of @inviter (a JID
 * string), with @reason and the room's password; used for mediated
 * invitations and for new members of a members-only room (§9.5). */
static void
admin_send_invitation (MucRoom *room, const char *to, const char *inviter,
                       const char *reason, const char *id, gboolean cont,
                       const char *thread)
{
  g_autoptr(MynaStanza) msg = myna_stanza_new ("message", MYNA_NS_CLIENT);
  MynaStanza *x, *invite, *conf;
  const char *room_jid = myna_jid_to_string (room->jid);
  gboolean pw = room->config.password_protected && room->config.password != NULL
                && room->config.password[0] != '\0';
  g_autofree char *body = NULL;

  myna_stanza_set_attr (msg, "from", room_jid);
  myna_stanza_set_attr (msg, "to", to);
  if (id != NULL)
    myna_stanza_set_attr (msg, "id", id);
  x = myna_stanza_add_child (msg, "x", NS_MUC_USER);
  invite = myna_stanza_add_child (x, "invite", NULL);
  myna_stanza_set_attr (invite, "from", inviter);
  if (reason != NULL)
    myna_stanza_add_text_child (invite, "reason", reason);
  if (cont)
    {
      MynaStanza *c = myna_stanza_add_child (invite, "continue", NULL);

      if (thread != NULL)
        myna_stanza_set_attr (c, "thread", thread);
    }
  if (pw)
    myna_stanza_add_text_child (x, "password", room->config.password);
  /* jabber:x:conference (XEP-0249's element) for clients that only know it */
  conf = myna_stanza_add_child (msg, "x", NS_CONFERENCE);
  myna_stanza_set_attr (conf, "jid", room_jid);
  if (reason != NULL)
    myna_stanza_set_attr (conf, "reason", reason);
  if (pw)
    myna_stanza_set_attr (conf, "password", room->config.password);
  body = g_strdup_printf ("%s invited you to the room %s%s%s%s", inviter, room_jid,
                          reason != NULL ? " (" : "", reason != NULL ? reason : "",
                          reason != NULL ? ")" : "");
  myna_stanza_add_text_child (msg, "body", body);
  myna_server_route (room->muc->server, msg);
}

/* Tells the occupants about an affiliation change of @bare, who is not in
 * the room (§10.6, §10.8: a message from the room); in a semi-anonymous
 * room only moderators may see the JID. */
static void
admin_announce_affiliation (MucRoom *room, const char *bare, MucAffiliation affiliation,
                            const char *reason)
{
  g_autoptr(MynaStanza) msg = myna_stanza_new ("message", MYNA_NS_CLIENT);
  MynaStanza *x, *item;

  myna_stanza_set_attr (msg, "from", myna_jid_to_string (room->jid));
  x = myna_stanza_add_child (msg, "x", NS_MUC_USER);
  item = myna_stanza_add_child (x, "item", NULL);
  myna_stanza_set_attr (item, "affiliation", muc_affiliation_name (affiliation));
  myna_stanza_set_attr (item, "jid", bare);
  myna_stanza_set_attr (item, "role", "none");
  if (reason != NULL)
    myna_stanza_add_text_child (item, "reason", reason);
  admin_send_to_occupants (room, msg, room->config.whois == MUC_WHOIS_ANYONE
                                      ? NULL : admin_is_moderator);
}

/* Sets @bare's affiliation to @now and applies it: the reserved nick goes
 * with membership (outcast or none), occupants of that JID are removed
 * (301 banned, 321 no longer a member of a members-only room) or get
 * their new item broadcast; a JID not in the room is announced to the
 * occupants, and invited when it became a member of a members-only room.
 * @actor is the real JID of who did it (NULL: the service).  TRUE when
 * the room was destroyed by it (a temporary room left empty). */
static gboolean
admin_apply_affiliation (MucRoom *room, const char *bare, MucAffiliation now,
                         MynaJid *actor, const char *actor_nick, const char *reason)
{
  MucAffiliation old = admin_affiliation_of (room, bare);
  g_autoptr(GPtrArray) present = NULL;

  muc_room_set_affiliation (room, bare, now);
  now = admin_affiliation_of (room, bare);      /* a service admin stays owner */
  if (now <= MUC_AFFIL_NONE)
    g_hash_table_remove (room->reserved_nicks, bare);
  g_info ("%s: %s is now %s (was %s)", room->local, bare, muc_affiliation_name (now),
          muc_affiliation_name (old));
  if (now == old)
    return FALSE;

  present = admin_occupants_of (room, bare);
  if (present->len == 0)
    {
      admin_announce_affiliation (room, bare, now, reason);
      if (now == MUC_AFFIL_MEMBER && old == MUC_AFFIL_NONE && room->config.members_only)
        admin_send_invitation (room, bare,
                               actor != NULL ? myna_jid_bare_string (actor)
                                             : myna_jid_to_string (room->jid),
                               reason, NULL, FALSE, NULL);
      return FALSE;
    }
  for (guint i = 0; i < present->len; i++)
    {
      MucOccupant *occ = present->pdata[i];

      if (now == MUC_AFFIL_OUTCAST)
        {
          if (admin_remove (room, occ, 301, actor_nick, reason))
            return TRUE;
        }
      else if (now < MUC_AFFIL_MEMBER && room->config.members_only)
        {
          if (admin_remove (room, occ, 321, actor_nick, reason))
            return TRUE;
        }
      else
        {
          admin_change_role (occ, admin_role_after (room, occ->role, old, now),
                             actor_nick, reason);
        }
    }
  return FALSE;
}

/* ---- muc#admin ------------------------------------------------------------ */

/* Checks one role change of @actor (an occupant, or NULL) against the
 * XEP's rules (§8.2–§8.5, §9.6–§9.8).  FALSE with the error in @type,
 * @condition. */
static gboolean
admin_check_role (MucRoom *room, MynaJid *from, MucOccupant *actor, MucOccupant *target,
                  MucRole role, MynaErrorType *type, const char **condition)
{
  MucAffiliation mine = muc_room_get_affiliation (room, from);
  MucAffiliation theirs = admin_affiliation_of (room, myna_jid_bare_string (target->bare));

  *type = MYNA_ERROR_TYPE_CANCEL;
  /* granting or revoking moderator status is an admin's (§9.6, §9.7) */
  if ((role == MUC_ROLE_MODERATOR || (target->role == MUC_ROLE_MODERATOR && role != MUC_ROLE_NONE))
      && mine < MUC_AFFIL_ADMIN)
    {
      *type = MYNA_ERROR_TYPE_AUTH;
      *condition = "forbidden";
      return FALSE;
    }
  /* everything else is a moderator's (§8) */
  if (mine < MUC_AFFIL_ADMIN && (actor == NULL || actor->role != MUC_ROLE_MODERATOR))
    {
      *type = MYNA_ERROR_TYPE_AUTH;
      *condition = "forbidden";
      return FALSE;
    }
  /* nobody acts on a higher affiliation (kick §8.2) */
  if (theirs > mine)
    {
      *condition = "not-allowed";
      return FALSE;
    }
  /* an admin's or owner's voice and moderator status cannot be taken
   * (§8.4, §9.7); voice not from one at or above the moderator (§8.4) */
  if (role != MUC_ROLE_NONE && role < MUC_ROLE_MODERATOR
      && (theirs >= MUC_AFFIL_ADMIN || (role == MUC_ROLE_VISITOR && theirs >= mine
                                        && target != actor)))
    {
      *condition = "not-allowed";
      return FALSE;
    }
  return TRUE;
}

/* Checks one affiliation change of @from (§9, §10.3–§10.8). */
static gboolean
admin_check_affiliation (MucRoom *room, MynaJid *from, const char *bare,
                         MucAffiliation now, MynaErrorType *type, const char **condition)
{
  MucAffiliation mine = muc_room_get_affiliation (room, from);
  MucAffiliation theirs = admin_affiliation_of (room, bare);

  *type = MYNA_ERROR_TYPE_CANCEL;
  if (mine < MUC_AFFIL_ADMIN)
    {
      *type = MYNA_ERROR_TYPE_AUTH;
      *condition = "forbidden";
      return FALSE;
    }
  /* §9.1: an admin or owner cannot ban itself */
  if (now == MUC_AFFIL_OUTCAST && g_strcmp0 (bare, myna_jid_bare_string (from)) == 0)
    {
      *condition = "conflict";
      return FALSE;
    }
  if (mine == MUC_AFFIL_OWNER)
    return TRUE;
  /* an admin: not on owners or admins (§9.1 ban of an owner: not-allowed),
   * and only owners grant admin or owner status (§10.3, §10.6: forbidden) */
  if (theirs >= MUC_AFFIL_ADMIN)
    {
      *condition = "not-allowed";
      return FALSE;
    }
  if (now >= MUC_AFFIL_ADMIN)
    {
      *type = MYNA_ERROR_TYPE_AUTH;
      *condition = "forbidden";
      return FALSE;
    }
  return TRUE;
}

/* Reads one <item/> of a muc#admin set into a change; FALSE with an error. */
static AdminChange *
admin_read_item (MucRoom *room, MynaStanza *item, MynaErrorType *type,
                 const char **condition, const char **text)
{
  const char *role = myna_stanza_get_attr (item, "role");
  const char *affiliation = myna_stanza_get_attr (item, "affiliation");
  const char *nick = myna_stanza_get_attr (item, "nick");
  const char *jid = myna_stanza_get_attr (item, "jid");
  const char *reason = myna_stanza_get_child_text (item, "reason");
  AdminChange *c;

  *type = MYNA_ERROR_TYPE_MODIFY;
  *condition = "bad-request";
  if ((role == NULL) == (affiliation == NULL))
    {
      *text = "An item changes either a role or an affiliation";
      return NULL;
    }
  c = g_new0 (AdminChange, 1);
  c->reason = reason != NULL && reason[0] != '\0' ? g_strdup (reason) : NULL;
  if (role != NULL)
    {
      int r = muc_role_parse (role);

      c->is_role = TRUE;
      if (r < 0 || nick == NULL)
        {
          *text = r < 0 ? "Unknown role" : "A role change names the occupant by nick";
          admin_change_free (c);
          return NULL;
        }
      c->role = r;
      c->nick = g_strdup (nick);
      return c;
    }

  int a = muc_affiliation_parse (affiliation);

  if (a < MUC_AFFIL_OUTCAST)
    {
      *text = "Unknown affiliation";
      admin_change_free (c);
      return NULL;
    }
  c->affiliation = a;
  if (jid != NULL)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(MynaJid) parsed = myna_jid_parse (jid, &error);

      if (parsed == NULL)
        {
          *condition = "jid-malformed";
          *text = "Bad JID";
          admin_change_free (c);
          return NULL;
        }
      c->bare = g_strdup (myna_jid_bare_string (parsed));
      /* §9.5: a member's (or admin's, owner's) reserved nick; ignored
       * with the other affiliations, which keep none */
      if (a >= MUC_AFFIL_MEMBER)
        c->nick = g_strdup (nick);
      return c;
    }
  if (nick != NULL)
    {
      MucOccupant *occ = muc_room_find_occupant (room, nick);
      GHashTableIter it;
      gpointer key, value;

      if (occ != NULL)
        {
          c->bare = g_strdup (myna_jid_bare_string (occ->bare));
          return c;
        }
      /* or the user who registered that nick */
      g_hash_table_iter_init (&it, room->reserved_nicks);
      while (g_hash_table_iter_next (&it, &key, &value))
        if (g_strcmp0 (value, nick) == 0)
          {
            c->bare = g_strdup (key);
            return c;
          }
      *type = MYNA_ERROR_TYPE_CANCEL;
      *condition = "item-not-found";
      *text = "No occupant or registered user has that nick";
      admin_change_free (c);
      return NULL;
    }
  *text = "An affiliation change names the user by JID";
  admin_change_free (c);
  return NULL;
}

/* muc#admin get: one list by role or by affiliation (§8.5, §9.2, §9.5,
 * §9.8, §10.5, §10.8), to those the XEP lets read it. */
static void
admin_get_list (MucRoom *room, MynaCall *call, MynaStanza *iq, MynaStanza *item)
{
  MynaJid *from = myna_call_get_from (call);
  MucAffiliation mine = muc_room_get_affiliation (room, from);
  MucOccupant *me = admin_sender_occupant (room, from);
  gboolean moderator = me != NULL && me->role == MUC_ROLE_MODERATOR;
  const char *role_name = item != NULL ? myna_stanza_get_attr (item, "role") : NULL;
  const char *aff_name = item != NULL ? myna_stanza_get_attr (item, "affiliation") : NULL;
  g_autoptr(MynaStanza) reply = myna_stanza_new_iq_result (iq);
  MynaStanza *query = myna_stanza_add_child (reply, "query", NS_MUC_ADMIN);

  if ((role_name == NULL) == (aff_name == NULL))
    {
      admin_error (room, call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request",
                   "Ask for one list, by role or by affiliation");
      return;
    }
  if (role_name != NULL)
    {
      int role = muc_role_parse (role_name);
      g_autoptr(GPtrArray) all = NULL;
      gboolean allowed;

      if (role <= MUC_ROLE_NONE)
        {
          admin_error (room, call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request", "No such list");
          return;
        }
      /* the moderator list is an admin's (§9.8), the others a moderator's */
      allowed = role == MUC_ROLE_MODERATOR ? mine >= MUC_AFFIL_ADMIN
                                           : moderator || mine >= MUC_AFFIL_ADMIN;
      if (!allowed)
        {
          admin_error (room, call, iq, MYNA_ERROR_TYPE_AUTH, "forbidden", NULL);
          return;
        }
      all = muc_room_list_occupants (room);
      g_ptr_array_sort (all, admin_compare_occupants);
      for (guint i = 0; i < all->len; i++)
        {
          MucOccupant *occ = all->pdata[i];
          MynaStanza *it;

          if ((int) occ->role != role)
            continue;
          it = myna_stanza_add_child (query, "item", NULL);
          myna_stanza_set_attr (it, "affiliation", muc_affiliation_name (
                                muc_room_get_affiliation (room, occ->bare)));
          if (occ->sessions->len > 0)
            myna_stanza_set_attr (it, "jid", myna_jid_to_string (occ->sessions->pdata[0]));
          myna_stanza_set_attr (it, "nick", occ->nick);
          myna_stanza_set_attr (it, "role", muc_role_name (occ->role));
        }
      myna_call_send (call, reply);
      return;
    }

  int affiliation = muc_affiliation_parse (aff_name);
  gboolean allowed = FALSE;
  gboolean non_anonymous = room->config.whois == MUC_WHOIS_ANYONE;

  switch (affiliation)
    {
    case MUC_AFFIL_OUTCAST:
      allowed = mine >= MUC_AFFIL_ADMIN;
      break;
    case MUC_AFFIL_MEMBER:
      /* §9.5: members of a non-anonymous members-only room may read it */
      allowed = mine >= MUC_AFFIL_ADMIN
                || (non_anonymous && room->config.members_only && mine >= MUC_AFFIL_MEMBER);
      break;
    case MUC_AFFIL_ADMIN:
    case MUC_AFFIL_OWNER:
      /* §10.5, §10.8: owners; in a non-anonymous room also those affiliated */
      allowed = mine == MUC_AFFIL_OWNER || (non_anonymous && (mine >= MUC_AFFIL_MEMBER || me != NULL));
      break;
    default:
      admin_error (room, call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request", "No such list");
      return;
    }
  if (!allowed)
    {
      admin_error (room, call, iq, MYNA_ERROR_TYPE_AUTH, "forbidden", NULL);
      return;
    }

  g_autoptr(GPtrArray) list = admin_list_affiliated (room, affiliation);

  for (guint i = 0; i < list->len; i++)
    {
      const char *bare = list->pdata[i];
      const char *nick = g_hash_table_lookup (room->reserved_nicks, bare);
      MynaStanza *it = myna_stanza_add_child (query, "item", NULL);

      myna_stanza_set_attr (it, "affiliation", aff_name);
      myna_stanza_set_attr (it, "jid", bare);
      if (nick != NULL)
        myna_stanza_set_attr (it, "nick", nick);
    }
  myna_call_send (call, reply);
}

/* Whether another change of @changes names the same target as @c. */
static gboolean
admin_duplicate (GPtrArray *changes, AdminChange *c)
{
  for (guint i = 0; i < changes->len; i++)
    {
      AdminChange *o = changes->pdata[i];

      if (o->is_role == c->is_role
          && g_strcmp0 (c->is_role ? o->nick : o->bare, c->is_role ? c->nick : c->bare) == 0)
        return TRUE;
    }
  return FALSE;
}

/* Whether nick @nick is free for @bare: no other JID reserved it and no
 * occupant of another JID holds it. */
static gboolean
admin_nick_free (MucRoom *room, const char *bare, const char *nick)
{
  GHashTableIter it;
  gpointer key, value;
  MucOccupant *occ;

  g_hash_table_iter_init (&it, room->reserved_nicks);
  while (g_hash_table_iter_next (&it, &key, &value))
    if (g_strcmp0 (value, nick) == 0 && g_strcmp0 (key, bare) != 0)
      return FALSE;
  occ = muc_room_find_occupant (room, nick);
  return occ == NULL || g_strcmp0 (myna_jid_bare_string (occ->bare), bare) == 0;
}

/* muc#admin set: every item is checked, then all are applied (§8, §9). */
static void
admin_set (MucRoom *room, MynaCall *call, MynaStanza *iq, MynaStanza *query)
{
  MynaJid *from = myna_call_get_from (call);
  MucOccupant *actor = admin_sender_occupant (room, from);
  g_autoptr(GPtrArray) changes = g_ptr_array_new_with_free_func (admin_change_free);
  g_autofree char *actor_nick = actor != NULL ? g_strdup (actor->nick) : NULL;
  g_autoptr(MynaJid) actor_jid = myna_jid_ref (from);
  int owners = admin_count_owners (room);
  gboolean gone = FALSE;

  for (guint i = 0; i < myna_stanza_get_n_children (query); i++)
    {
      MynaStanza *item = myna_stanza_get_child_nth (query, i);
      MynaErrorType type;
      const char *condition, *text = NULL;
      AdminChange *c;

      if (myna_stanza_is_text (item) || g_strcmp0 (myna_stanza_get_name (item), "item") != 0)
        continue;
      c = admin_read_item (room, item, &type, &condition, &text);
      if (c == NULL)
        {
          admin_error (room, call, iq, type, condition, text);
          return;
        }
      if (admin_duplicate (changes, c))
        {
          admin_change_free (c);
          admin_error (room, call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request",
                       "One change per occupant or JID");
          return;
        }
      g_ptr_array_add (changes, c);
      if (c->is_role)
        {
          MucOccupant *target = muc_room_find_occupant (room, c->nick);

          if (target == NULL)
            {
              admin_error (room, call, iq, MYNA_ERROR_TYPE_CANCEL, "item-not-found",
                           "No occupant has that nick");
              return;
            }
          if (!admin_check_role (room, from, actor, target, c->role, &type, &condition))
            {
              admin_error (room, call, iq, type, condition, NULL);
              return;
            }
        }
      else
        {
          MucAffiliation old = admin_stored_affiliation (room, c->bare);

          if (!admin_check_affiliation (room, from, c->bare, c->affiliation, &type, &condition))
            {
              admin_error (room, call, iq, type, condition, NULL);
              return;
            }
          if (c->nick != NULL && c->nick[0] != '\0')
            {
              g_autofree char *prepped = myna_jid_prep_resource (c->nick, NULL);

              if (prepped == NULL)
                {
                  admin_error (room, call, iq, MYNA_ERROR_TYPE_MODIFY, "not-acceptable",
                               "Bad reserved nick");
                  return;
                }
              if (!admin_nick_free (room, c->bare, prepped))
                {
                  admin_error (room, call, iq, MYNA_ERROR_TYPE_CANCEL, "conflict",
                               "That nick is someone else's");
                  return;
                }
              g_free (c->nick);
              c->nick = g_steal_pointer (&prepped);
            }
          owners += (c->affiliation == MUC_AFFIL_OWNER) - (old == MUC_AFFIL_OWNER);
        }
    }
  if (changes->len == 0)
    {
      admin_error (room, call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request", "No item");
      return;
    }
  /* §10.7: the last owner cannot go */
  if (owners <= 0)
    {
      admin_error (room, call, iq, MYNA_ERROR_TYPE_CANCEL, "conflict",
                   "A room needs an owner");
      return;
    }

  Muc *muc = room->muc;  /* a change may destroy @room */

  /* every change was checked: apply them, affiliations first (a role
   * change then finds the occupants they left in the room) */
  for (guint i = 0; i < changes->len && !gone; i++)
    {
      AdminChange *c = changes->pdata[i];

      if (c->is_role)
        continue;
      if (c->nick != NULL)
        {
          if (c->nick[0] == '\0')
            g_hash_table_remove (room->reserved_nicks, c->bare);
          else
            g_hash_table_insert (room->reserved_nicks, g_strdup (c->bare), g_strdup (c->nick));
        }
      gone = admin_apply_affiliation (room, c->bare, c->affiliation, actor_jid, actor_nick,
                                      c->reason);
    }
  for (guint i = 0; i < changes->len && !gone; i++)
    {
      AdminChange *c = changes->pdata[i];
      MucOccupant *target;

      if (!c->is_role || (target = muc_room_find_occupant (room, c->nick)) == NULL)
        continue;
      if (c->role == MUC_ROLE_NONE)
        gone = admin_remove (room, target, 307, actor_nick, c->reason);
      else
        muc_admin_set_role (target, c->role, actor_nick, c->reason);
    }
  if (!gone)
    muc_room_save (room);
  muc_reply_durable (muc, call, iq);
}

void
muc_admin_iq (MucRoom *room, MynaCall *call, MynaStanza *iq)
{
  MynaStanza *query = myna_stanza_get_child (iq, "query", NS_MUC_ADMIN);
  const char *type = myna_stanza_get_type (iq);

  g_return_if_fail (room != NULL && call != NULL && iq != NULL);

  if (query == NULL)
    {
      admin_error (room, call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request", NULL);
      return;
    }
  if (g_strcmp0 (type, "get") == 0)
    admin_get_list (room, call, iq, myna_stanza_get_child (query, "item", NULL));
  else if (g_strcmp0 (type, "set") == 0)
    admin_set (room, call, iq, query);
  else
    admin_error (room, call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request", NULL);
}

/* ---- data forms ----------------------------------------------------------- */

/* Appends a <field/> to form @x. */
static MynaStanza *
form_add_field (MynaStanza *x, const char *var, const char *type, const char *label)
{
  MynaStanza *field = myna_stanza_add_child (x, "field", NULL);

  myna_stanza_set_attr (field, "var", var);
  if (type != NULL)
    myna_stanza_set_attr (field, "type", type);
  if (label != NULL)
    myna_stanza_set_attr (field, "label", label);
  return field;
}

/* Appends a field with one value. */
static MynaStanza *
form_add_value_field (MynaStanza *x, const char *var, const char *type, const char *label,
                      const char *value)
{
  MynaStanza *field = form_add_field (x, var, type, label);

  myna_stanza_add_text_child (field, "value", value != NULL ? value : "");
  return field;
}

/* Appends a boolean field. */
static void
form_add_bool (MynaStanza *x, const char *var, const char *label, gboolean value)
{
  form_add_value_field (x, var, "boolean", label, value ? "1" : "0");
}

/* Appends an <option/> to a list field. */
static void
form_add_option (MynaStanza *field, const char *label, const char *value)
{
  MynaStanza *option = myna_stanza_add_child (field, "option", NULL);

  if (label != NULL)
    myna_stanza_set_attr (option, "label", label);
  myna_stanza_add_text_child (option, "value", value);
}

/* The field @var of form @x, or NULL. */
static MynaStanza *
form_get_field (MynaStanza *x, const char *var)
{
  for (guint i = 0; x != NULL && i < myna_stanza_get_n_children (x); i++)
    {
      MynaStanza *field = myna_stanza_get_child_nth (x, i);

      if (!myna_stanza_is_text (field)
          && g_strcmp0 (myna_stanza_get_name (field), "field") == 0
          && g_strcmp0 (myna_stanza_get_attr (field, "var"), var) == 0)
        return field;
    }
  return NULL;
}

/* The first value of field @var of form @x, NULL when absent ("" when
 * the field has no value). */
static const char *
form_get_value (MynaStanza *x, const char *var)
{
  MynaStanza *field = form_get_field (x, var);
  const char *value;

  if (field == NULL)
    return NULL;
  value = myna_stanza_get_child_text (field, "value");
  return value != NULL ? value : "";
}

/* Reads an XEP-0004 boolean. */
static gboolean
form_parse_bool (const char *text, gboolean *out)
{
  if (g_strcmp0 (text, "1") == 0 || g_strcmp0 (text, "true") == 0)
    *out = TRUE;
  else if (g_strcmp0 (text, "0") == 0 || g_strcmp0 (text, "false") == 0 || g_strcmp0 (text, "") == 0)
    *out = FALSE;
  else
    return FALSE;
  return TRUE;
}

/* Whether form @x's FORM_TYPE (if any) is @form_type. */
static gboolean
form_type_is (MynaStanza *x, const char *form_type)
{
  const char *value = form_get_value (x, "FORM_TYPE");

  return value == NULL || g_strcmp0 (value, form_type) == 0;
}

/* ---- muc#owner: the configuration form ------------------------------------ */

static const char *const whois_names[] = { "moderators", "anyone" };
static const char *const pm_names[] = { "anyone", "participants", "moderators", "none" };

/* The muc#roomconfig form with @room's current values (§10.2). */
static MynaStanza *
owner_config_form (MucRoom *room)
{
  MynaStanza *x = myna_stanza_new ("x", NS_DATA);
  MucConfig *c = &room->config;
  Muc *muc = room->muc;
  MynaStanza *field;
  g_autofree char *title = g_strdup_printf ("Configuration of %s", myna_jid_to_string (room->jid));
  g_autofree char *max = g_strdup_printf ("%u", c->max_users);
  g_autofree char *history = g_strdup_printf ("%u", c->history_length);
  static const guint sizes[] = { 10, 20, 30, 50, 100, 200, 500, 1000, 5000, 10000 };
  g_autoptr(GPtrArray) owners = admin_list_affiliated (room, MUC_AFFIL_OWNER);
  g_autoptr(GPtrArray) admins = admin_list_affiliated (room, MUC_AFFIL_ADMIN);
  gboolean listed = FALSE;

  myna_stanza_set_attr (x, "type", "form");
  myna_stanza_add_text_child (x, "title", title);
  myna_stanza_add_text_child (x, "instructions",
      "Complete this form to change the room's configuration "
      "(submit it empty to accept the current one).");
  form_add_value_field (x, "FORM_TYPE", "hidden", NULL, NS_MUC_ROOMCONFIG);
  form_add_value_field (x, "muc#roomconfig_roomname", "text-single", "Name", c->name);
  form_add_value_field (x, "muc#roomconfig_roomdesc", "text-single", "Description",
                        c->description);
  form_add_value_field (x, "muc#roomconfig_lang", "text-single",
                        "Natural language of the discussion", c->lang);
  form_add_bool (x, "muc#roomconfig_persistentroom", "Make the room persistent", c->persistent);
  form_add_bool (x, "muc#roomconfig_publicroom", "List the room publicly", c->public_room);
  form_add_bool (x, "muc#roomconfig_membersonly", "Make the room members-only",
                 c->members_only);
  form_add_bool (x, "muc#roomconfig_moderatedroom", "Make the room moderated", c->moderated);
  form_add_bool (x, "muc#roomconfig_passwordprotectedroom", "Require a password to enter",
                 c->password_protected);
  form_add_value_field (x, "muc#roomconfig_roomsecret", "text-private", "Password",
                        c->password);

  field = form_add_value_field (x, "muc#roomconfig_maxusers", "list-single",
                                "Maximum number of occupants",
                                c->max_users == 0 ? "none" : max);
  form_add_option (field, "No limit of the room's own", "none");
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      g_autofree char *v = g_strdup_printf ("%u", sizes[i]);

      if (sizes[i] > muc->max_occupants)
        break;
      if (sizes[i] == c->max_users)
        listed = TRUE;
      if (c->max_users != 0 && !listed && c->max_users < sizes[i])
        {
          form_add_option (field, NULL, max);
          listed = TRUE;
        }
      form_add_option (field, NULL, v);
    }
  if (c->max_users != 0 && !listed)
    form_add_option (field, NULL, max);

  field = form_add_value_field (x, "muc#roomconfig_whois", "list-single",
                                "Who may discover real JIDs",
                                whois_names[c->whois]);
  form_add_option (field, "Moderators only", "moderators");
  form_add_option (field, "Anyone", "anyone");
  form_add_bool (x, "muc#roomconfig_changesubject", "Allow occupants to change the subject",
                 c->change_subject);
  form_add_bool (x, "muc#roomconfig_allowinvites", "Allow occupants to invite others",
                 c->allow_invites);
  field = form_add_value_field (x, "muc#roomconfig_allowpm", "list-single",
                                "Who may send private messages", pm_names[c->allow_pm]);
  form_add_option (field, "Anyone", "anyone");
  form_add_option (field, "Participants and moderators", "participants");
  form_add_option (field, "Moderators only", "moderators");
  form_add_option (field, "Nobody", "none");
  form_add_bool (x, "muc#roomconfig_allowvoicerequests", "Allow visitors to request voice",
                 c->voice_requests);
  field = form_add_field (x, "muc#roomconfig_historylength", "text-single",
                          "Number of history messages sent on joining");
  myna_stanza_add_text_child (field, "desc", "At most the service's limit");
  myna_stanza_add_text_child (field, "value", history);
  form_add_bool (x, "muc#roomconfig_enablearchiving", "Archive the discussion", c->archived);
  field = form_add_field (x, "muc#roomconfig_roomowners", "jid-multi", "Room owners");
  for (guint i = 0; i < owners->len; i++)
    myna_stanza_add_text_child (field, "value", owners->pdata[i]);
  field = form_add_field (x, "muc#roomconfig_roomadmins", "jid-multi", "Room admins");
  for (guint i = 0; i < admins->len; i++)
    myna_stanza_add_text_child (field, "value", admins->pdata[i]);
  return x;
}

/* Reads a boolean field into @out when present; FALSE when malformed. */
static gboolean
owner_read_bool (MynaStanza *x, const char *var, gboolean *out)
{
  const char *value = form_get_value (x, var);

  return value == NULL || form_parse_bool (value, out);
}

/* Reads an unsigned field into @out when present; FALSE when malformed. */
static gboolean
owner_read_uint (MynaStanza *x, const char *var, guint *out)
{
  const char *value = form_get_value (x, var);
  guint64 n;

  if (value == NULL)
    return TRUE;
  if (!g_ascii_string_to_unsigned (value, 10, 0, G_MAXUINT, &n, NULL))
    return FALSE;
  *out = (guint) n;
  return TRUE;
}

/* Reads a list-single field into @out (an index of @names). */
static gboolean
owner_read_choice (MynaStanza *x, const char *var, const char *const *names, guint n_names,
                   guint *out)
{
  const char *value = form_get_value (x, var);

  if (value == NULL)
    return TRUE;
  for (guint i = 0; i < n_names; i++)
    if (g_strcmp0 (value, names[i]) == 0)
      {
        *out = i;
        return TRUE;
      }
  return FALSE;
}

/* Reads a jid-multi field into a set of bare JIDs (NULL when absent);
 * FALSE when a value is not a JID. */
static gboolean
owner_read_jids (MynaStanza *x, const char *var, GHashTable **out)
{
  MynaStanza *field = form_get_field (x, var);

  *out = NULL;
  if (field == NULL)
    return TRUE;
  *out = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < myna_stanza_get_n_children (field); i++)
    {
      MynaStanza *v = myna_stanza_get_child_nth (field, i);
      g_autoptr(MynaJid) jid = NULL;
      const char *text;

      if (myna_stanza_is_text (v) || g_strcmp0 (myna_stanza_get_name (v), "value") != 0)
        continue;
      text = myna_stanza_get_text (v);
      if (text[0] == '\0')
        continue;
      jid = myna_jid_parse (text, NULL);
      if (jid == NULL)
        {
          g_clear_pointer (out, g_hash_table_unref);
          return FALSE;
        }
      g_hash_table_add (*out, g_strdup (myna_jid_bare_string (jid)));
    }
  return TRUE;
}

/* The submitted form @x read over a copy of the room's configuration
 * into @c: FALSE with an error (bad-request: malformed value;
 * not-acceptable: beyond the service's limits or inconsistent). */
static gboolean
owner_read_config (MucRoom *room, MynaStanza *x, MucConfig *c, const char **condition,
                   const char **text)
{
  Muc *muc = room->muc;
  const char *v;
  guint whois = c->whois, pm = c->allow_pm;

  *condition = "bad-request";
  if (!form_type_is (x, NS_MUC_ROOMCONFIG))
    {
      *text = "Not a muc#roomconfig form";
      return FALSE;
    }
  if ((v = form_get_value (x, "muc#roomconfig_roomname")) != NULL)
    g_free (c->name), c->name = g_strdup (v);
  if ((v = form_get_value (x, "muc#roomconfig_roomdesc")) != NULL)
    g_free (c->description), c->description = g_strdup (v);
  if ((v = form_get_value (x, "muc#roomconfig_lang")) != NULL)
    g_free (c->lang), c->lang = g_strdup (v);
  if ((v = form_get_value (x, "muc#roomconfig_roomsecret")) != NULL)
    {
      g_free (c->password);
      c->password = v[0] != '\0' ? g_strdup (v) : NULL;
      /* a secret alone makes the room password-protected */
      if (c->password != NULL && form_get_field (x, "muc#roomconfig_passwordprotectedroom") == NULL)
        c->password_protected = TRUE;
    }
  if (!owner_read_bool (x, "muc#roomconfig_persistentroom", &c->persistent)
      || !owner_read_bool (x, "muc#roomconfig_publicroom", &c->public_room)
      || !owner_read_bool (x, "muc#roomconfig_membersonly", &c->members_only)
      || !owner_read_bool (x, "muc#roomconfig_moderatedroom", &c->moderated)
      || !owner_read_bool (x, "muc#roomconfig_passwordprotectedroom", &c->password_protected)
      || !owner_read_bool (x, "muc#roomconfig_changesubject", &c->change_subject)
      || !owner_read_bool (x, "muc#roomconfig_allowinvites", &c->allow_invites)
      || !owner_read_bool (x, "muc#roomconfig_allowvoicerequests", &c->voice_requests)
      || !owner_read_bool (x, "muc#roomconfig_enablearchiving", &c->archived))
    {
      *text = "A boolean field is not a boolean";
      return FALSE;
    }
  if (!owner_read_choice (x, "muc#roomconfig_whois", whois_names, G_N_ELEMENTS (whois_names), &whois)
      || !owner_read_choice (x, "muc#roomconfig_allowpm", pm_names, G_N_ELEMENTS (pm_names), &pm))
    {
      *text = "Not one of the field's options";
      return FALSE;
    }
  c->whois = whois;
  c->allow_pm = pm;
  if (g_strcmp0 (form_get_value (x, "muc#roomconfig_maxusers"), "none") == 0)
    c->max_users = 0;
  else if (!owner_read_uint (x, "muc#roomconfig_maxusers", &c->max_users))
    {
      *text = "muc#roomconfig_maxusers is not a number";
      return FALSE;
    }
  /* muc.h's muc#roomconfig_historylength (Prosody's name), or the XEP's
   * registered muc#maxhistoryfetch */
  if (!owner_read_uint (x, "muc#maxhistoryfetch", &c->history_length)
      || !owner_read_uint (x, "muc#roomconfig_historylength", &c->history_length))
    {
      *text = "The history length is not a number";
      return FALSE;
    }
  *condition = "not-acceptable";
  if (c->max_users > muc->max_occupants)
    {
      *text = "More occupants than the service allows";
      return FALSE;
    }
  if (c->history_length > muc->max_history_length)
    {
      *text = "More history than the service allows";
      return FALSE;
    }
  if (c->password_protected && (c->password == NULL || c->password[0] == '\0'))
    {
      *text = "A password-protected room needs a password";
      return FALSE;
    }
  if (!c->password_protected)
    g_clear_pointer (&c->password, g_free);
  return TRUE;
}

/* The affiliation a JID should get from the owners and admins fields
 * (@owners/@admins NULL: that field was not submitted), or -2 to leave it. */
static int
owner_wanted_affiliation (MucRoom *room, const char *bare, GHashTable *owners, GHashTable *admins)
{
  MucAffiliation now = admin_stored_affiliation (room, bare);

  if (owners != NULL && g_hash_table_contains (owners, bare))
    return MUC_AFFIL_OWNER;
  if (admins != NULL && g_hash_table_contains (admins, bare))
    return owners != NULL || now != MUC_AFFIL_OWNER ? MUC_AFFIL_ADMIN : -2;
  if ((now == MUC_AFFIL_OWNER && owners != NULL) || (now == MUC_AFFIL_ADMIN && admins != NULL))
    return MUC_AFFIL_NONE;
  return -2;
}

/* Applies the owners and admins fields: the full lists (§10.2), not deltas.
 * TRUE when the room was destroyed by a removal. */
static gboolean
owner_apply_lists (MucRoom *room, GHashTable *owners, GHashTable *admins, MynaJid *actor,
                   const char *actor_nick)
{
  g_autoptr(GPtrArray) jids = g_ptr_array_new_with_free_func (g_free);
  GHashTable *sets[] = { owners, admins, room->affiliations };
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);

  for (guint s = 0; s < G_N_ELEMENTS (sets); s++)
    {
      GHashTableIter it;
      gpointer key;

      if (sets[s] == NULL)
        continue;
      g_hash_table_iter_init (&it, sets[s]);
      while (g_hash_table_iter_next (&it, &key, NULL))
        if (g_hash_table_add (seen, key))
          g_ptr_array_add (jids, g_strdup (key));
    }
  g_ptr_array_sort (jids, admin_compare_strings);
  for (guint i = 0; i < jids->len; i++)
    {
      int want = owner_wanted_affiliation (room, jids->pdata[i], owners, admins);

      if (want >= MUC_AFFIL_NONE && (MucAffiliation) want != admin_stored_affiliation (room, jids->pdata[i]))
        if (admin_apply_affiliation (room, jids->pdata[i], want, actor, actor_nick, NULL))
          return TRUE;
    }
  return FALSE;
}

/* Whether any non-privacy setting differs (status 104). */
static gboolean
owner_config_changed (const MucConfig *a, const MucConfig *b)
{
  return g_strcmp0 (a->name, b->name) != 0 || g_strcmp0 (a->description, b->description) != 0
         || g_strcmp0 (a->lang, b->lang) != 0 || a->persistent != b->persistent
         || a->public_room != b->public_room || a->members_only != b->members_only
         || a->moderated != b->moderated || a->password_protected != b->password_protected
         || g_strcmp0 (a->password, b->password) != 0 || a->max_users != b->max_users
         || a->change_subject != b->change_subject || a->allow_invites != b->allow_invites
         || a->allow_pm != b->allow_pm || a->voice_requests != b->voice_requests
         || a->history_length != b->history_length;
}

/* muc#owner set with a submitted form: checks it, applies it, unlocks the
 * room, removes non-members when it became members-only (322), tells
 * the occupants (104, 170–173) and saves (§10.1.2, §10.2). */
static void
owner_submit (MucRoom *room, MynaCall *call, MynaStanza *iq, MynaStanza *x)
{
  Muc *muc = room->muc;  /* @room may be destroyed on the way */
  MynaJid *from = myna_call_get_from (call);
  MucOccupant *actor = admin_sender_occupant (room, from);
  g_autofree char *actor_nick = actor != NULL ? g_strdup (actor->nick) : NULL;
  g_autoptr(MynaJid) actor_jid = myna_jid_ref (from);
  g_autoptr(GHashTable) owners = NULL;
  g_autoptr(GHashTable) admins = NULL;
  MucConfig next, old;
  const char *condition, *text;
  gboolean was_locked = room->locked, gone = FALSE;
  int codes[6], n = 0;

  muc_config_copy (&next, &room->config);
  if (!owner_read_config (room, x, &next, &condition, &text))
    {
      muc_config_clear (&next);
      admin_error (room, call, iq, MYNA_ERROR_TYPE_MODIFY, condition, text);
      return;
    }
  if (!owner_read_jids (x, "muc#roomconfig_roomowners", &owners)
      || !owner_read_jids (x, "muc#roomconfig_roomadmins", &admins))
    {
      muc_config_clear (&next);
      admin_error (room, call, iq, MYNA_ERROR_TYPE_MODIFY, "jid-malformed",
                   "An owner or admin is not a JID");
      return;
    }
  if (owners != NULL && g_hash_table_size (owners) == 0)
    {
      muc_config_clear (&next);
      admin_error (room, call, iq, MYNA_ERROR_TYPE_CANCEL, "conflict", "A room needs an owner");
      return;
    }

  old = room->config;
  room->config = next;
  room->locked = FALSE;
  if (was_locked)
    g_info ("%s: unlocked by %s", room->local, myna_jid_bare_string (from));

  gone = owner_apply_lists (room, owners, admins, actor_jid, actor_nick);
  if (!gone && room->config.members_only && !old.members_only)
    {
      g_autoptr(GPtrArray) all = muc_room_list_occupants (room);

      for (guint i = 0; i < all->len && !gone; i++)
        {
          MucOccupant *occ = all->pdata[i];

          if (muc_room_get_affiliation (room, occ->bare) < MUC_AFFIL_MEMBER)
            gone = admin_remove (room, occ, 322, NULL, NULL);
        }
    }
  if (!gone && !was_locked)
    {
      if (owner_config_changed (&old, &room->config))
        codes[n++] = 104;
      if (room->config.archived != old.archived && room->muc->archive != NULL)
        codes[n++] = room->config.archived ? 170 : 171;
      if (room->config.whois != old.whois)
        codes[n++] = room->config.whois == MUC_WHOIS_ANYONE ? 172 : 173;
      codes[n] = 0;
      if (n > 0)
        muc_room_notify_status (room, codes);
    }
  muc_config_clear (&old);
  if (!gone && !room->config.persistent && g_hash_table_size (room->occupants) == 0)
    {
      /* made temporary while empty: it goes now, as it would have gone
       * when its last occupant left */
      g_info ("%s: temporary and empty: destroyed", room->local);
      muc_room_destroy (room, NULL, NULL, NULL);
      gone = TRUE;
    }
  if (!gone)
    muc_room_save (room);
  muc_reply_durable (muc, call, iq);
}

/* muc#owner set <destroy/> (§10.9). */
static void
owner_destroy (MucRoom *room, MynaCall *call, MynaStanza *iq, MynaStanza *destroy)
{
  const char *alternate = myna_stanza_get_attr (destroy, "jid");
  const char *reason = myna_stanza_get_child_text (destroy, "reason");
  const char *password = myna_stanza_get_child_text (destroy, "password");

  if (alternate != NULL)
    {
      g_autoptr(MynaJid) alt = myna_jid_parse (alternate, NULL);

      if (alt == NULL)
        {
          admin_error (room, call, iq, MYNA_ERROR_TYPE_MODIFY, "jid-malformed",
                       "The alternate venue is not a JID");
          return;
        }
    }
  g_info ("%s: destroyed by %s", room->local, myna_jid_bare_string (myna_call_get_from (call)));
  Muc *muc = room->muc;  /* @room is freed by muc_room_destroy */
  muc_room_destroy (room, alternate, reason, password);
  muc_reply_durable (muc, call, iq);
}

void
muc_owner_iq (MucRoom *room, MynaCall *call, MynaStanza *iq)
{
  MynaStanza *query = myna_stanza_get_child (iq, "query", NS_MUC_OWNER);
  const char *type = myna_stanza_get_type (iq);
  MynaStanza *x, *destroy;

  g_return_if_fail (room != NULL && call != NULL && iq != NULL);

  if (query == NULL)
    {
      admin_error (room, call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request", NULL);
      return;
    }
  if (muc_room_get_affiliation (room, myna_call_get_from (call)) != MUC_AFFIL_OWNER)
    {
      admin_error (room, call, iq, MYNA_ERROR_TYPE_AUTH, "forbidden", "Only owners may");
      return;
    }
  if (g_strcmp0 (type, "get") == 0)
    {
      g_autoptr(MynaStanza) reply = myna_stanza_new_iq_result (iq);
      MynaStanza *q = myna_stanza_add_child (reply, "query", NS_MUC_OWNER);

      myna_stanza_append_take (q, owner_config_form (room));
      myna_call_send (call, reply);
      return;
    }
  if (g_strcmp0 (type, "set") != 0)
    {
      admin_error (room, call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request", NULL);
      return;
    }
  if ((destroy = myna_stanza_get_child (query, "destroy", NULL)) != NULL)
    {
      owner_destroy (room, call, iq, destroy);
      return;
    }
  x = myna_stanza_get_child (query, "x", NS_DATA);
  if (x == NULL)
    {
      admin_error (room, call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request", "No form");
      return;
    }
  if (g_strcmp0 (myna_stanza_get_attr (x, "type"), "cancel") == 0)
    {
      /* §10.1.2: cancelling the initial configuration destroys the room */
      if (room->locked)
        muc_room_destroy (room, NULL, NULL, NULL);
      myna_call_reply_result (call, iq);
      return;
    }
  if (g_strcmp0 (myna_stanza_get_attr (x, "type"), "submit") != 0)
    {
      admin_error (room, call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request",
                   "The form must be submitted or cancelled");
      return;
    }
  owner_submit (room, call, iq, x);
}

/* ---- jabber:iq:register (§7.10) ------------------------------------------- */

void
muc_register_iq (MucRoom *room, MynaCall *call, MynaStanza *iq)
{
  MynaJid *from = myna_call_get_from (call);
  const char *bare = myna_jid_bare_string (from);
  MucAffiliation mine = muc_room_get_affiliation (room, from);
  MynaStanza *query = myna_stanza_get_child (iq, "query", NS_REGISTER);
  const char *registered = g_hash_table_lookup (room->reserved_nicks, bare);
  const char *type = myna_stanza_get_type (iq);
  MynaStanza *x;
  const char *nick;
  g_autofree char *prepped = NULL;

  g_return_if_fail (room != NULL && call != NULL && iq != NULL);

  if (query == NULL)
    {
      admin_error (room, call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request", NULL);
      return;
    }
  if (mine == MUC_AFFIL_OUTCAST)
    {
      admin_error (room, call, iq, MYNA_ERROR_TYPE_AUTH, "forbidden", "You are banned");
      return;
    }
  /* a members-only room's membership is given by its admins */
  if (room->config.members_only && mine < MUC_AFFIL_MEMBER)
    {
      admin_error (room, call, iq, MYNA_ERROR_TYPE_CANCEL, "not-allowed",
                   "Membership of this room is given by its admins");
      return;
    }
  if (g_strcmp0 (type, "get") == 0)
    {
      g_autoptr(MynaStanza) reply = myna_stanza_new_iq_result (iq);
      MynaStanza *q = myna_stanza_add_child (reply, "query", NS_REGISTER);
      MynaStanza *form, *field;

      if (registered != NULL)
        {
          myna_stanza_add_child (q, "registered", NULL);
          myna_stanza_add_text_child (q, "username", registered);
          myna_call_send (call, reply);
          return;
        }
      myna_stanza_add_text_child (q, "instructions", "Choose the nick reserved for you in this room.");
      form = myna_stanza_add_child (q, "x", NS_DATA);
      myna_stanza_set_attr (form, "type", "form");
      myna_stanza_add_text_child (form, "title", myna_jid_to_string (room->jid));
      form_add_value_field (form, "FORM_TYPE", "hidden", NULL, NS_MUC_REGISTER);
      field = form_add_field (form, "muc#register_roomnick", "text-single", "Nickname");
      myna_stanza_add_child (field, "required", NULL);
      myna_call_send (call, reply);
      return;
    }
  if (g_strcmp0 (type, "set") != 0)
    {
      admin_error (room, call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request", NULL);
      return;
    }
  if (myna_stanza_get_child (query, "remove", NULL) != NULL)
    {
      /* XEP-0077 §3.2: unregistering gives the nick and membership up */
      g_hash_table_remove (room->reserved_nicks, bare);
      if (admin_stored_affiliation (room, bare) == MUC_AFFIL_MEMBER)
        {
          if (admin_apply_affiliation (room, bare, MUC_AFFIL_NONE, from, NULL, NULL))
            {
              myna_call_reply_result (call, iq);
              return;
            }
        }
      muc_room_save (room);
      muc_reply_durable (room->muc, call, iq);
      return;
    }
  x = myna_stanza_get_child (query, "x", NS_DATA);
  nick = x != NULL ? form_get_value (x, "muc#register_roomnick") : NULL;
  if (nick == NULL && x == NULL)
    nick = myna_stanza_get_child_text (query, "username");
  if (x != NULL && (!form_type_is (x, NS_MUC_REGISTER)
                    || g_strcmp0 (myna_stanza_get_attr (x, "type"), "submit") != 0))
    nick = NULL;
  if (nick == NULL || nick[0] == '\0'
      || (prepped = myna_jid_prep_resource (nick, NULL)) == NULL
      || strlen (prepped) > room->muc->max_nick_length)
    {
      admin_error (room, call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request",
                   "Submit the muc#register form with a valid nick");
      return;
    }
  if (!admin_nick_free (room, bare, prepped))
    {
      admin_error (room, call, iq, MYNA_ERROR_TYPE_CANCEL, "conflict",
                   "That nick is someone else's");
      return;
    }
  g_hash_table_insert (room->reserved_nicks, g_strdup (bare), g_strdup (prepped));
  g_info ("%s: %s registered as %s", room->local, bare, prepped);
  if (mine < MUC_AFFIL_MEMBER)
    {
      if (admin_apply_affiliation (room, bare, MUC_AFFIL_MEMBER, from, NULL, NULL))
        {
          myna_call_reply_result (call, iq);
          return;
        }
    }
  muc_room_save (room);
  muc_reply_durable (room->muc, call, iq);
}

/* ---- messages to the room: invitations and voice requests ---------------- */

/* A mediated invitation (§7.8.2) from @from: checked, then sent on. */
static gboolean
admin_invite (MucRoom *room, MynaCall *call, MynaStanza *message, MynaStanza *invite)
{
  MynaJid *from = myna_call_get_from (call);
  MucOccupant *inviter = admin_sender_occupant (room, from);
  MucAffiliation mine = muc_room_get_affiliation (room, from);
  const char *to = myna_stanza_get_attr (invite, "to");
  const char *reason = myna_stanza_get_child_text (invite, "reason");
  MynaStanza *cont = myna_stanza_get_child (invite, "continue", NULL);
  g_autoptr(MynaJid) invitee = to != NULL ? myna_jid_parse (to, NULL) : NULL;

  if (invitee == NULL)
    {
      admin_error (room, call, message, MYNA_ERROR_TYPE_MODIFY, "jid-malformed",
                   "The invitee is not a JID");
      return FALSE;
    }
  /* only occupants invite, bar the room's admins and owners */
  if (inviter == NULL && mine < MUC_AFFIL_ADMIN)
    {
      admin_error (room, call, message, MYNA_ERROR_TYPE_MODIFY, "not-acceptable",
                   "Only occupants may invite");
      return FALSE;
    }
  if (mine < MUC_AFFIL_ADMIN && inviter->role < MUC_ROLE_PARTICIPANT)
    {
      admin_error (room, call, message, MYNA_ERROR_TYPE_AUTH, "forbidden",
                   "Visitors may not invite");
      return FALSE;
    }
  /* §9.5: in a members-only room inviting is an admin's, or every
   * member's when the room allows it */
  if (room->config.members_only && mine < MUC_AFFIL_ADMIN && !room->config.allow_invites)
    {
      admin_error (room, call, message, MYNA_ERROR_TYPE_AUTH, "forbidden",
                   "Only admins may invite to this room");
      return FALSE;
    }
  g_debug ("%s: %s invites %s", room->local, myna_jid_to_string (from), myna_jid_to_string (invitee));
  if (room->config.members_only)
    {
      const char *bare = myna_jid_bare_string (invitee);

      if (admin_stored_affiliation (room, bare) == MUC_AFFIL_NONE)
        {
          muc_room_set_affiliation (room, bare, MUC_AFFIL_MEMBER);
          g_info ("%s: %s is now member (invited)", room->local, bare);
          muc_room_save (room);
        }
    }
  admin_send_invitation (room, myna_jid_to_string (invitee), myna_jid_to_string (from),
                         reason != NULL && reason[0] != '\0' ? reason : NULL,
                         myna_stanza_get_id (message), cont != NULL,
                         cont != NULL ? myna_stanza_get_attr (cont, "thread") : NULL);
  return TRUE;
}

/* A declined invitation (§7.8.2), sent on to the inviter; FALSE when
 * refused (the error was sent). */
static gboolean
admin_decline (MucRoom *room, MynaCall *call, MynaStanza *message, MynaStanza *decline)
{
  MynaJid *from = myna_call_get_from (call);
  const char *to = myna_stanza_get_attr (decline, "to");
  const char *reason = myna_stanza_get_child_text (decline, "reason");
  g_autoptr(MynaJid) inviter = to != NULL ? myna_jid_parse (to, NULL) : NULL;
  g_autoptr(MynaStanza) msg = myna_stanza_new ("message", MYNA_NS_CLIENT);
  MynaStanza *x, *d;
  g_autofree char *body = NULL;

  if (inviter == NULL)
    {
      admin_error (room, call, message, MYNA_ERROR_TYPE_MODIFY, "jid-malformed",
                   "The inviter is not a JID");
      return FALSE;
    }
  myna_stanza_set_attr (msg, "from", myna_jid_to_string (room->jid));
  if (myna_stanza_get_id (message) != NULL)
    myna_stanza_set_attr (msg, "id", myna_stanza_get_id (message));
  x = myna_stanza_add_child (msg, "x", NS_MUC_USER);
  d = myna_stanza_add_child (x, "decline", NULL);
  myna_stanza_set_attr (d, "from", myna_jid_bare_string (from));
  if (reason != NULL && reason[0] != '\0')
    myna_stanza_add_text_child (d, "reason", reason);
  body = g_strdup_printf ("%s declined your invitation to the room %s",
                          myna_jid_bare_string (from), myna_jid_to_string (room->jid));
  myna_stanza_add_text_child (msg, "body", body);
  /* an inviter named by its occupant JID is reached through the room */
  if (myna_jid_bare_equal (inviter, room->jid) && myna_jid_get_resource (inviter) != NULL)
    {
      MucOccupant *occ = muc_room_find_occupant (room, myna_jid_get_resource (inviter));

      if (occ != NULL)
        muc_occupant_send (occ, msg);
      return TRUE;
    }
  myna_stanza_set_attr (msg, "to", myna_jid_to_string (inviter));
  myna_server_route (room->muc->server, msg);
  return TRUE;
}

/* The voice request form sent to moderators (§8.6). */
static MynaStanza *
admin_voice_request_form (MucRoom *room, MucOccupant *occ, MynaJid *from)
{
  MynaStanza *msg = myna_stanza_new ("message", MYNA_NS_CLIENT);
  MynaStanza *x, *field;

  myna_stanza_set_attr (msg, "from", myna_jid_to_string (room->jid));
  x = myna_stanza_add_child (msg, "x", NS_DATA);
  myna_stanza_set_attr (x, "type", "form");
  myna_stanza_add_text_child (x, "title", "Voice request");
  myna_stanza_add_text_child (x, "instructions",
      "To approve this request for voice, select the \"Grant voice to this person?\" "
      "checkbox and submit the form.");
  form_add_value_field (x, "FORM_TYPE", "hidden", NULL, NS_MUC_REQUEST);
  field = form_add_value_field (x, "muc#role", "list-single", "Requested role", "participant");
  form_add_option (field, NULL, "participant");
  form_add_value_field (x, "muc#jid", "jid-single", "User ID", myna_jid_to_string (from));
  form_add_value_field (x, "muc#roomnick", "text-single", "Room nickname", occ->nick);
  form_add_bool (x, "muc#request_allow", "Grant voice to this person?", FALSE);
  return msg;
}

/* A muc#request form: a visitor's voice request goes to the moderators
 * (§7.13), a moderator's submitted approval grants voice (§8.6). */
static void
admin_voice (MucRoom *room, MynaCall *call, MynaStanza *message, MynaStanza *form)
{
  MynaJid *from = myna_call_get_from (call);
  MucOccupant *occ = admin_sender_occupant (room, from);
  AdminRoom *ar;
  gint64 now = g_get_monotonic_time (), *last;
  gboolean allow = FALSE;

  if (occ == NULL)
    {
      admin_error (room, call, message, MYNA_ERROR_TYPE_MODIFY, "not-acceptable",
                   "Only occupants may ask for voice");
      return;
    }
  if (occ->role == MUC_ROLE_MODERATOR)
    {
      const char *nick = form_get_value (form, "muc#roomnick");
      const char *jid = form_get_value (form, "muc#jid");
      MucOccupant *target = nick != NULL ? muc_room_find_occupant (room, nick) : NULL;

      if (target == NULL && jid != NULL)
        {
          g_autoptr(MynaJid) real = myna_jid_parse (jid, NULL);

          if (real != NULL)
            target = admin_sender_occupant (room, real);
        }
      if (g_strcmp0 (myna_stanza_get_attr (form, "type"), "submit") != 0
          || !form_parse_bool (form_get_value (form, "muc#request_allow"), &allow) || !allow
          || target == NULL || target->role != MUC_ROLE_VISITOR)
        {
          g_debug ("%s: voice request answer from %s without effect", room->local, occ->nick);
          return;
        }
      g_info ("%s: %s grants voice to %s", room->local, occ->nick, target->nick);
      muc_admin_set_role (target, MUC_ROLE_PARTICIPANT, occ->nick, NULL);
      return;
    }
  if (!room->config.voice_requests)
    {
      admin_error (room, call, message, MYNA_ERROR_TYPE_CANCEL, "not-allowed",
                   "Voice requests are disabled in this room");
      return;
    }
  if (occ->role != MUC_ROLE_VISITOR)
    {
      g_debug ("%s: %s asks for voice it has", room->local, occ->nick);
      return;
    }
  ar = admin_room (room);
  last = g_hash_table_lookup (ar->voice_requests, occ->nick);
  if (last != NULL && now - *last < ADMIN_VOICE_REQUEST_INTERVAL)
    {
      admin_error (room, call, message, MYNA_ERROR_TYPE_WAIT, "resource-constraint",
                   "Wait before asking for voice again");
      return;
    }
  /* forget requests old enough not to matter (bounds the table) */
  GHashTableIter it;
  gpointer value;

  g_hash_table_iter_init (&it, ar->voice_requests);
  while (g_hash_table_iter_next (&it, NULL, &value))
    if (now - *(gint64 *) value >= ADMIN_VOICE_REQUEST_INTERVAL)
      g_hash_table_iter_remove (&it);
  last = g_new (gint64, 1);
  *last = now;
  g_hash_table_insert (ar->voice_requests, g_strdup (occ->nick), last);

  g_autoptr(MynaStanza) request = admin_voice_request_form (room, occ, from);

  g_info ("%s: %s asks for voice", room->local, occ->nick);
  admin_send_to_occupants (room, request, admin_is_moderator);
}

gboolean
muc_admin_message (MucRoom *room, MynaCall *call, MynaStanza *message)
{
  MynaStanza *user, *form;
  const char *type;

  g_return_val_if_fail (room != NULL && call != NULL && message != NULL, FALSE);

  type = myna_stanza_get_type (message);
  if (type != NULL && g_strcmp0 (type, "normal") != 0)
    return FALSE;
  user = myna_stanza_get_child (message, "x", NS_MUC_USER);
  if (user != NULL)
    {
      gboolean any = FALSE;
      guint invites = 0;

      for (guint i = 0; i < myna_stanza_get_n_children (user); i++)
        {
          MynaStanza *child = myna_stanza_get_child_nth (user, i);

          if (!myna_stanza_is_text (child)
              && g_strcmp0 (myna_stanza_get_name (child), "invite") == 0)
            invites++;
        }
      if (invites > ADMIN_MAX_INVITES)
        {
          g_autofree char *text = g_strdup_printf ("at most %d invitations in one message",
                                                   ADMIN_MAX_INVITES);
          admin_error (room, call, message, MYNA_ERROR_TYPE_MODIFY, "policy-violation", text);
          return TRUE;
        }
      /* each <invite/> or <decline/> in turn; a refused one answers the
       * message with its error and ends it */
      for (guint i = 0; i < myna_stanza_get_n_children (user); i++)
        {
          MynaStanza *child = myna_stanza_get_child_nth (user, i);
          const char *name = myna_stanza_get_name (child);
          gboolean ok;

          if (myna_stanza_is_text (child))
            continue;
          if (g_strcmp0 (name, "invite") == 0)
            ok = admin_invite (room, call, message, child);
          else if (g_strcmp0 (name, "decline") == 0)
            ok = admin_decline (room, call, message, child);
          else
            continue;
          any = TRUE;
          if (!ok)
            break;
        }
      return any;
    }
  form = myna_stanza_get_child (message, "x", NS_DATA);
  if (form != NULL && g_strcmp0 (form_get_value (form, "FORM_TYPE"), NS_MUC_REQUEST) == 0)
    {
      admin_voice (room, call, message, form);
      return TRUE;
    }
  return FALSE;
}

void
muc_admin_room_free (MucRoom *room)
{
  AdminRoom *ar;

  g_return_if_fail (room != NULL);

  ar = g_steal_pointer (&room->admin);
  if (ar == NULL)
    return;
  g_hash_table_unref (ar->voice_requests);
  g_free (ar);
}

/* Hot reload (muc.c's save/restore): the times of the voice requests, as
 * a{sx} (nick → µs of its last request), or NULL when there are none. */
GVariant *
muc_admin_room_save (MucRoom *room)
{
  AdminRoom *ar;
  GVariantBuilder b;
  GHashTableIter it;
  gpointer key, value;

  g_return_val_if_fail (room != NULL, NULL);
  ar = room->admin;
  if (ar == NULL || g_hash_table_size (ar->voice_requests) == 0)
    return NULL;
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a{sx}"));
  g_hash_table_iter_init (&it, ar->voice_requests);
  while (g_hash_table_iter_next (&it, &key, &value))
    g_variant_builder_add (&b, "{sx}", (const char *) key, *(gint64 *) value);
  return g_variant_builder_end (&b);
}

void
muc_admin_room_restore (MucRoom *room, GVariant *state)
{
  AdminRoom *ar;
  GVariantIter it;
  const char *nick;
  gint64 when;

  g_return_if_fail (room != NULL && state != NULL);
  if (!g_variant_is_of_type (state, G_VARIANT_TYPE ("a{sx}")))
    {
      g_warning ("room %s: saved voice requests of type %s ignored", room->local,
                 g_variant_get_type_string (state));
      return;
    }
  ar = admin_room (room);
  g_variant_iter_init (&it, state);
  while (g_variant_iter_next (&it, "{&sx}", &nick, &when))
    g_hash_table_insert (ar->voice_requests, g_strdup (nick), g_memdup2 (&when, sizeof when));
}
