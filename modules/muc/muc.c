/* muc.c: the multi-user chat service (XEP-0045) serving a component
 * domain.  Skeleton: the room work fills it in (see muc.h). */
#include "muc.h"

MucRoom *
muc_room_find (Muc *muc, const char *local)
{
  return g_hash_table_lookup (muc->rooms, local);
}

MucOccupant *
muc_room_find_occupant (MucRoom *room, const char *nick)
{
  return g_hash_table_lookup (room->occupants, nick);
}

MucOccupant *
muc_room_find_by_real (MucRoom *room, MynaJid *full)
{
  return g_hash_table_lookup (room->by_real, myna_jid_to_string (full));
}

GPtrArray *
muc_room_list_occupants (MucRoom *room)
{
  GPtrArray *all = g_ptr_array_new ();
  GHashTableIter it;
  gpointer value;

  g_hash_table_iter_init (&it, room->occupants);
  while (g_hash_table_iter_next (&it, NULL, &value))
    g_ptr_array_add (all, value);
  return all;
}

MucAffiliation
muc_room_get_affiliation (MucRoom *room, MynaJid *real)
{
  return GPOINTER_TO_INT (g_hash_table_lookup (room->affiliations, myna_jid_bare_string (real)));
}

void
muc_room_set_affiliation (MucRoom *room, const char *bare, MucAffiliation affiliation)
{
  if (affiliation == MUC_AFFIL_NONE)
    g_hash_table_remove (room->affiliations, bare);
  else
    g_hash_table_insert (room->affiliations, g_strdup (bare), GINT_TO_POINTER (affiliation));
}

MucRoom *
muc_room_create (Muc *muc, const char *local, MynaJid *creator, GError **error)
{
  g_set_error_literal (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED, "not-allowed");
  return NULL;
}

void
muc_room_save (MucRoom *room)
{
}

void
muc_room_destroy (MucRoom *room, const char *alternate, const char *reason,
                  const char *password)
{
}

void
muc_room_broadcast (MucRoom *room, MynaStanza *stanza)
{
}

void
muc_occupant_send (MucOccupant *occ, MynaStanza *stanza)
{
  muc_fanout (occ->room->muc, stanza, occ->sessions);
}

void
muc_occupant_broadcast_presence (MucOccupant *occ, const int *codes,
                                 const char *actor_nick, const char *reason)
{
}

void
muc_occupant_remove (MucOccupant *occ, const int *codes, const char *actor_nick,
                     const char *reason)
{
}

gboolean
muc_room_jids_visible_to (MucRoom *room, MucOccupant *viewer)
{
  return room->config.whois == MUC_WHOIS_ANYONE
         || (viewer != NULL && viewer->role == MUC_ROLE_MODERATOR);
}

void
muc_room_notify_status (MucRoom *room, const int *codes)
{
}

static const char *const affiliation_names[] = { "outcast", "none", "member", "admin", "owner" };
static const char *const role_names[] = { "none", "visitor", "participant", "moderator" };

const char *
muc_affiliation_name (MucAffiliation a)
{
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

static gboolean
muc_load (MynaModule *mod, GError **error)
{
  Muc *muc = g_new0 (Muc, 1);

  muc->mod = mod;
  muc->host = myna_module_get_host (mod);
  muc->server = myna_module_get_server (mod);
  muc->storage = myna_module_get_storage (mod);
  muc->rooms = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  myna_module_set_data (mod, muc, NULL);
  return muc_history_init (muc, error) && muc_disco_init (muc, error);
}

MYNA_MODULE_DEFINE (muc,
  .version = "0.1",
  .serves  = MYNA_STRV (NS_MUC),
  .mode    = MYNA_MODULE_EAGER,
  .load    = muc_load);
