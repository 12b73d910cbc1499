/* disco.c: service discovery of the service and its rooms (XEP-0030,
 * XEP-0059, XEP-0128 muc#roominfo), self-ping (XEP-0410), and the
 * administration commands (mynactl muc, /api/v1/muc).
 *
 *  - The service (the component's domain): identity conference/text and
 *    the features NS_MUC and RSM, registered with the SDK so that the
 *    disco module answers with them too; disco#items lists the public
 *    rooms (listed, unlocked, persistent or occupied) sorted by JID, with
 *    their names, paged by XEP-0059 (<max/>, <after/>, <before/>,
 *    <index/>; <first index/>, <last/>, <count/>).  Without <set/> at
 *    most DISCO_MAX_ITEMS items come, with a <set/> saying so.
 *  - A room: identity conference/text named after the room, the muc_*
 *    features of its configuration, and a muc#roominfo form; answered to
 *    anyone, hidden rooms included (XEP-0045 §6.4, as Prosody does); a
 *    locked room exists only for its occupants (its owner) until it is
 *    configured: others get item-not-found, as on joining it.  Its
 *    disco#items list the occupants' room JIDs to occupants only (§6.5:
 *    others get an empty list).  The node x-roomuser-item (§7.10.1)
 *    names the requester's reserved nick.
 *  - Self-ping (XEP-0410): a ping to room/nick from a real full JID
 *    holding that nick is answered by the room; from one not in the room,
 *    or to a nick nobody holds, not-acceptable; to another occupant's
 *    nick it is left to muc.c, which forwards it.
 *  - `mynactl muc list|create|destroy` (myna_module_add_admin_command)
 *    and GET/POST/DELETE /api/v1/muc/rooms (with the rest module's
 *    token), over every muc instance of the server. */
#include "muc.h"

#include <string.h>
#ifdef MYNA_HAVE_HTTP
#include <json-glib/json-glib.h>
#include <myna/rest.h>
#endif

/* The most items a disco#items answer holds (a larger <max/> is cut). */
#define DISCO_MAX_ITEMS 1000
/* The service's name in its identity. */
#define DISCO_SERVICE_NAME "Chatrooms"
#define NS_SELF_PING "http://jabber.org/protocol/muc#self-ping-optimization"
#define HTTP_PREFIX "/api/v1/muc"

/* disco.c's state per service (Muc.disco_data). */
typedef struct {
  MynaService *rest;          /* rest/1 of the main host, optional */
} Disco;

/* Every service of the server, for the admin command and the HTTP API. */
static GPtrArray *disco_services;
#ifdef MYNA_HAVE_HTTP
/* The route of /api/v1/muc and the service that added it: the core
 * removes it when that instance unloads (disco_route_gone), and the next
 * instance to load adds it again. */
static guint disco_route;
static Muc  *disco_route_owner;
#endif

/* ---- rooms as the outside sees them ------------------------------------------ */

/* Whether @room is listed in the service's disco#items. */
static gboolean
disco_room_listed (MucRoom *room)
{
  return room->config.public_room && !room->locked
         && (room->config.persistent || g_hash_table_size (room->occupants) > 0);
}

/* Whether @room is archived (configured so, and an archive is bound). */
static gboolean
disco_room_archived (MucRoom *room)
{
  return room->config.archived && room->muc->archive != NULL
         && myna_service_get_table (room->muc->archive) != NULL;
}

/* The name the room shows: its configured name, else its local part. */
static const char *
disco_room_name (MucRoom *room)
{
  return room->config.name != NULL && *room->config.name != '\0' ? room->config.name
                                                                 : room->local;
}

/* The room's subject text, or "". */
static const char *
disco_room_subject (MucRoom *room)
{
  const char *text = room->subject != NULL
                       ? myna_stanza_get_child_text (room->subject, "subject") : NULL;
  return text != NULL ? text : "";
}

static gint
disco_room_cmp (gconstpointer a, gconstpointer b)
{
  return strcmp ((*(MucRoom *const *) a)->local, (*(MucRoom *const *) b)->local);
}

/* The listed rooms, sorted by JID (one domain: by local part).
 * Returns: (transfer container) of borrowed MucRoom* */
static GPtrArray *
disco_listed_rooms (Muc *muc, gboolean all)
{
  GPtrArray *rooms = g_ptr_array_sized_new (g_hash_table_size (muc->rooms));
  GHashTableIter it;
  gpointer value;

  g_hash_table_iter_init (&it, muc->rooms);
  while (g_hash_table_iter_next (&it, NULL, &value))
    if (all || disco_room_listed (value))
      g_ptr_array_add (rooms, value);
  g_ptr_array_sort (rooms, disco_room_cmp);
  return rooms;
}

/* ---- disco#info ------------------------------------------------------------------ */

/* Adds a <field var type?><value/></field> to @form. */
static void
disco_field (MynaStanza *form, const char *var, const char *type, const char *value)
{
  MynaStanza *field = myna_stanza_add_child (form, "field", NULL);

  myna_stanza_set_attr (field, "var", var);
  if (type != NULL)
    myna_stanza_set_attr (field, "type", type);
  myna_stanza_add_text_child (field, "value", value);
}

/* The room's muc#roominfo form (XEP-0045 §15.5.4, XEP-0128). */
static void
disco_roominfo (MucRoom *room, MynaStanza *query)
{
  static const char *const pm_names[] = { "anyone", "participants", "moderators", "none" };
  MynaStanza *form = myna_stanza_add_child (query, "x", NS_DATA);
  g_autofree char *occupants = g_strdup_printf ("%u", g_hash_table_size (room->occupants));
  g_autofree char *history = g_strdup_printf ("%u", room->config.history_length);

  myna_stanza_set_attr (form, "type", "result");
  disco_field (form, "FORM_TYPE", "hidden", NS_MUC_ROOMINFO);
  disco_field (form, "muc#roomconfig_roomname", "text-single", disco_room_name (room));
  disco_field (form, "muc#roominfo_description", "text-single",
               room->config.description != NULL ? room->config.description : "");
  disco_field (form, "muc#roominfo_lang", "text-single",
               room->config.lang != NULL ? room->config.lang : "");
  disco_field (form, "muc#roominfo_occupants", "text-single", occupants);
  disco_field (form, "muc#roominfo_subject", "text-single", disco_room_subject (room));
  disco_field (form, "muc#roominfo_subjectmod", "boolean",
               room->config.change_subject ? "1" : "0");
  disco_field (form, "muc#roomconfig_changesubject", "boolean",
               room->config.change_subject ? "1" : "0");
  disco_field (form, "muc#roomconfig_allowinvites", "boolean",
               room->config.allow_invites ? "1" : "0");
  disco_field (form, "muc#roomconfig_allowpm", "list-single",
               pm_names[CLAMP ((int) room->config.allow_pm, 0, 3)]);
  disco_field (form, "muc#maxhistoryfetch", "text-single", history);
}

/* The room's features (XEP-0045 §6.4, §15.2.2). */
static GPtrArray *
disco_room_features (MucRoom *room)
{
  GPtrArray *f = g_ptr_array_new ();
  const MucConfig *c = &room->config;
  gboolean password = c->password_protected && c->password != NULL && *c->password != '\0';

  g_ptr_array_add (f, (char *) NS_MUC);
  g_ptr_array_add (f, (char *) NS_SELF_PING);
  g_ptr_array_add (f, (char *) NS_DISCO_INFO);
  g_ptr_array_add (f, (char *) NS_DISCO_ITEMS);
  g_ptr_array_add (f, (char *) NS_REGISTER);
  if (c->voice_requests)
    g_ptr_array_add (f, (char *) NS_MUC_REQUEST);
  if (disco_room_archived (room))
    {
      g_ptr_array_add (f, (char *) NS_MAM);
      g_ptr_array_add (f, (char *) NS_SID);
    }
  g_ptr_array_add (f, (char *) (c->public_room ? "muc_public" : "muc_hidden"));
  g_ptr_array_add (f, (char *) (c->persistent ? "muc_persistent" : "muc_temporary"));
  g_ptr_array_add (f, (char *) (c->members_only ? "muc_membersonly" : "muc_open"));
  g_ptr_array_add (f, (char *) (c->moderated ? "muc_moderated" : "muc_unmoderated"));
  g_ptr_array_add (f, (char *) (c->whois == MUC_WHOIS_ANYONE ? "muc_nonanonymous"
                                                              : "muc_semianonymous"));
  g_ptr_array_add (f, (char *) (password ? "muc_passwordprotected" : "muc_unsecured"));
  return f;
}

/* Whether the sender of @call may know that @room exists: a locked room
 * is its occupants' (the owner's) alone. */
static gboolean
disco_room_visible (MucRoom *room, MynaCall *call)
{
  MynaJid *from = myna_call_get_from (call);

  return !room->locked || (from != NULL && muc_room_find_by_real (room, from) != NULL);
}

/* The answer for the service's domain: what the core's registrations say,
 * as the disco module would answer it. */
static void
disco_service_info (Muc *muc, MynaCall *call, MynaStanza *iq)
{
  g_autoptr(MynaStanza) reply = myna_stanza_new_iq_result (iq);
  MynaStanza *query = myna_stanza_add_child (reply, "query", NS_DISCO_INFO);
  g_autoptr(GPtrArray) ids = myna_host_get_identities (muc->host);
  g_autoptr(GPtrArray) features = myna_host_get_features (muc->host);
  g_autoptr(GPtrArray) forms = myna_host_get_disco_extensions (muc->host);

  myna_disco_info_fill (query, ids, features, forms);
  myna_call_send (call, reply);
}

void
muc_disco_info_iq (Muc *muc, MucRoom *room, MynaCall *call, MynaStanza *iq)
{
  MynaStanza *req = myna_stanza_get_child (iq, "query", NS_DISCO_INFO);
  const char *node = req != NULL ? myna_stanza_get_attr (req, "node") : NULL;
  gboolean at_room = myna_jid_get_local (myna_call_get_to (call)) != NULL;

  g_return_if_fail (muc != NULL && call != NULL && iq != NULL);
  if (g_strcmp0 (myna_stanza_get_type (iq), "get") != 0 || req == NULL)
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "bad-request", NULL);
      return;
    }
  if (room == NULL && !at_room && node == NULL)
    {
      disco_service_info (muc, call, iq);
      return;
    }
  if (room == NULL || !disco_room_visible (room, call)
      || myna_jid_get_resource (myna_call_get_to (call)) != NULL)
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "item-not-found", NULL);
      return;
    }
  g_autoptr(MynaStanza) reply = myna_stanza_new_iq_result (iq);
  MynaStanza *query = myna_stanza_add_child (reply, "query", NS_DISCO_INFO);

  if (g_strcmp0 (node, "x-roomuser-item") == 0)
    {
      /* §7.10.1: the requester's reserved nick, if any. */
      MynaJid *from = myna_call_get_from (call);
      const char *nick = from != NULL ? g_hash_table_lookup (room->reserved_nicks,
                                                             myna_jid_bare_string (from))
                                      : NULL;
      myna_stanza_set_attr (query, "node", node);
      if (nick != NULL)
        {
          MynaStanza *id = myna_stanza_add_child (query, "identity", NULL);
          myna_stanza_set_attr (id, "category", "conference");
          myna_stanza_set_attr (id, "type", "text");
          myna_stanza_set_attr (id, "name", nick);
        }
      myna_call_send (call, reply);
      return;
    }
  if (node != NULL)
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "item-not-found", NULL);
      return;
    }
  MynaDiscoIdentity identity = { "conference", "text", disco_room_name (room) };
  g_autoptr(GPtrArray) ids = g_ptr_array_new ();
  g_autoptr(GPtrArray) features = disco_room_features (room);

  g_ptr_array_add (ids, &identity);
  myna_disco_info_fill (query, ids, features, NULL);
  disco_roominfo (room, query);
  myna_call_send (call, reply);
}

/* ---- disco#items and RSM ------------------------------------------------------------ */

/* A page of a sorted list (XEP-0059): [start, start + n) of @total. */
typedef struct {
  guint    start;
  guint    n;
  gboolean with_set;   /* the answer carries a <set/> */
} DiscoPage;

/* Parses an unsigned number of at most 9 digits. */
static gboolean
disco_parse_uint (const char *text, guint *out)
{
  guint64 v;

  if (text == NULL || !g_ascii_isdigit (*text) || strlen (text) > 9
      || !g_ascii_string_to_unsigned (text, 10, 0, G_MAXUINT32, &v, NULL))
    return FALSE;
  *out = (guint) v;
  return TRUE;
}

/* The first index of @rooms (sorted) whose local part is after @local
 * (@inclusive: not before it). */
static guint
disco_lower_bound (GPtrArray *rooms, const char *local, gboolean inclusive)
{
  guint lo = 0, hi = rooms->len;

  while (lo < hi)
    {
      guint mid = lo + (hi - lo) / 2;
      int c = strcmp (((MucRoom *) rooms->pdata[mid])->local, local);
      if (c < 0 || (c == 0 && !inclusive))
        lo = mid + 1;
      else
        hi = mid;
    }
  return lo;
}

/* The local part of an RSM id: a room JID of this service (a bare local
 * part is taken too). */
static const char *
disco_rsm_local (Muc *muc, const char *id, char **owned)
{
  const char *at = strrchr (id, '@');

  if (at == NULL)
    return id;
  if (strcmp (at + 1, myna_host_get_name (muc->host)) != 0)
    return NULL;
  *owned = g_strndup (id, (gsize) (at - id));
  return *owned;
}

/* Works out the page the request's <set/> asks for; FALSE when answered
 * with an error. */
static gboolean
disco_rsm_page (Muc *muc, MynaCall *call, MynaStanza *iq, MynaStanza *query, GPtrArray *rooms,
                DiscoPage *page)
{
  MynaStanza *set = myna_stanza_get_child (query, "set", NS_RSM);
  guint max = DISCO_MAX_ITEMS;
  MynaStanza *after, *before;
  const char *index;

  *page = (DiscoPage) { 0, MIN (rooms->len, DISCO_MAX_ITEMS), rooms->len > DISCO_MAX_ITEMS };
  if (set == NULL)
    return TRUE;
  page->with_set = TRUE;
  const char *max_text = myna_stanza_get_child_text (set, "max");
  if (max_text != NULL && !disco_parse_uint (max_text, &max))
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request",
                             "<max/> must be a non-negative integer");
      return FALSE;
    }
  max = MIN (max, DISCO_MAX_ITEMS);
  after = myna_stanza_get_child (set, "after", NS_RSM);
  before = myna_stanza_get_child (set, "before", NS_RSM);
  index = myna_stanza_get_child_text (set, "index");
  if ((after != NULL) + (before != NULL) + (index != NULL) > 1)
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request",
                             "at most one of <after/>, <before/> and <index/>");
      return FALSE;
    }
  guint start = 0, end = rooms->len;
  if (after != NULL || (before != NULL && myna_stanza_get_text (before) != NULL
                        && *myna_stanza_get_text (before) != '\0'))
    {
      const char *id = myna_stanza_get_text (after != NULL ? after : before);
      g_autofree char *owned = NULL;
      const char *local = id != NULL ? disco_rsm_local (muc, id, &owned) : NULL;
      if (local == NULL)
        {
          myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "item-not-found",
                                 "not an item of this list");
          return FALSE;
        }
      /* By position: an item gone since the last page leaves no hole. */
      if (after != NULL)
        start = disco_lower_bound (rooms, local, FALSE);
      else
        end = disco_lower_bound (rooms, local, TRUE);
    }
  if (index != NULL)
    {
      if (!disco_parse_uint (index, &start) || start > rooms->len)
        {
          myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "item-not-found",
                                 "<index/> is out of range");
          return FALSE;
        }
    }
  if (before != NULL)
    start = end > max ? end - max : 0;    /* the last page before it */
  page->start = start;
  page->n = MIN (max, end - start);
  return TRUE;
}

/* Appends the <set/> of @page to @query. */
static void
disco_rsm_answer (MynaStanza *query, GPtrArray *rooms, const DiscoPage *page)
{
  MynaStanza *set = myna_stanza_add_child (query, "set", NS_RSM);
  g_autofree char *count = g_strdup_printf ("%u", rooms->len);

  if (page->n > 0)
    {
      g_autofree char *index = g_strdup_printf ("%u", page->start);
      MucRoom *first = rooms->pdata[page->start];
      MucRoom *last = rooms->pdata[page->start + page->n - 1];
      MynaStanza *f = myna_stanza_add_text_child (set, "first", myna_jid_to_string (first->jid));
      myna_stanza_set_attr (f, "index", index);
      myna_stanza_add_text_child (set, "last", myna_jid_to_string (last->jid));
    }
  myna_stanza_add_text_child (set, "count", count);
}

/* The service's items: its public rooms, by page. */
static void
disco_service_items (Muc *muc, MynaCall *call, MynaStanza *iq, MynaStanza *req)
{
  g_autoptr(GPtrArray) rooms = disco_listed_rooms (muc, FALSE);
  DiscoPage page;

  if (!disco_rsm_page (muc, call, iq, req, rooms, &page))
    return;
  g_autoptr(MynaStanza) reply = myna_stanza_new_iq_result (iq);
  MynaStanza *query = myna_stanza_add_child (reply, "query", NS_DISCO_ITEMS);
  g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func (g_free);

  for (guint i = page.start; i < page.start + page.n; i++)
    {
      MucRoom *room = rooms->pdata[i];
      MynaDiscoItem *item = g_new0 (MynaDiscoItem, 1);
      item->jid = myna_jid_to_string (room->jid);
      item->name = disco_room_name (room);
      g_ptr_array_add (items, item);
    }
  myna_disco_items_fill (query, items);
  if (page.with_set)
    disco_rsm_answer (query, rooms, &page);
  myna_call_send (call, reply);
}

void
muc_disco_items_iq (Muc *muc, MucRoom *room, MynaCall *call, MynaStanza *iq)
{
  MynaStanza *req = myna_stanza_get_child (iq, "query", NS_DISCO_ITEMS);
  const char *node = req != NULL ? myna_stanza_get_attr (req, "node") : NULL;
  gboolean at_room = myna_jid_get_local (myna_call_get_to (call)) != NULL;

  g_return_if_fail (muc != NULL && call != NULL && iq != NULL);
  if (g_strcmp0 (myna_stanza_get_type (iq), "get") != 0 || req == NULL)
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "bad-request", NULL);
      return;
    }
  if (room == NULL && !at_room && node == NULL)
    {
      disco_service_items (muc, call, iq, req);
      return;
    }
  if (room == NULL || node != NULL || !disco_room_visible (room, call)
      || myna_jid_get_resource (myna_call_get_to (call)) != NULL)
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "item-not-found", NULL);
      return;
    }
  /* §6.5: the occupants, to those who see them anyway (occupants). */
  g_autoptr(MynaStanza) reply = myna_stanza_new_iq_result (iq);
  MynaStanza *query = myna_stanza_add_child (reply, "query", NS_DISCO_ITEMS);
  MynaJid *from = myna_call_get_from (call);

  if (from != NULL && muc_room_find_by_real (room, from) != NULL)
    {
      g_autoptr(GPtrArray) occupants = muc_room_list_occupants (room);
      for (guint i = 0; i < occupants->len; i++)
        {
          MucOccupant *occ = occupants->pdata[i];
          MynaStanza *item = myna_stanza_add_child (query, "item", NULL);
          myna_stanza_set_attr (item, "jid", myna_jid_to_string (occ->jid));
        }
    }
  myna_call_send (call, reply);
}

/* ---- self-ping (XEP-0410) ---------------------------------------------------------- */

gboolean
muc_disco_ping_iq (MucRoom *room, const char *nick, MynaCall *call, MynaStanza *iq)
{
  MynaJid *from = myna_call_get_from (call);
  MucOccupant *self;

  g_return_val_if_fail (room != NULL && nick != NULL && call != NULL && iq != NULL, FALSE);
  if (g_strcmp0 (myna_stanza_get_type (iq), "get") != 0)
    return FALSE;
  self = from != NULL ? muc_room_find_by_real (room, from) : NULL;
  if (self != NULL && strcmp (self->nick, nick) == 0)
    {
      myna_call_reply_result (call, iq);
      return TRUE;
    }
  /* A ping to another occupant is that occupant's to answer (forwarded). */
  if (self != NULL && muc_room_find_occupant (room, nick) != NULL)
    return FALSE;
  g_debug ("room %s: ping to %s from %s, who is not joined as that nick: not-acceptable",
           myna_jid_to_string (room->jid), nick,
           from != NULL ? myna_jid_to_string (from) : "(nobody)");
  myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "not-acceptable",
                         self == NULL ? "You are not currently connected to this chat"
                                      : "That nickname is not yours");
  return TRUE;
}

/* ---- administration: rooms listed, created, destroyed ------------------------------- */

/* The service serving @domain (NULL: the only one), or NULL with @error. */
static Muc *
disco_find_service (const char *domain, GError **error)
{
  guint n = disco_services != NULL ? disco_services->len : 0;

  if (domain == NULL && n == 1)
    return disco_services->pdata[0];
  if (domain == NULL)
    {
      g_set_error (error, G_IO_ERROR, n == 0 ? G_IO_ERROR_NOT_FOUND : G_IO_ERROR_INVALID_ARGUMENT,
                   n == 0 ? "no MUC service is running" : "several MUC services: name one");
      return NULL;
    }
  for (guint i = 0; i < n; i++)
    {
      Muc *muc = disco_services->pdata[i];
      if (strcmp (myna_host_get_name (muc->host), domain) == 0)
        return muc;
    }
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "%s is not a MUC service here", domain);
  return NULL;
}

/* The room @jid names (room@service), with its service; NULL with @error
 * (G_IO_ERROR_INVALID_ARGUMENT: not a room JID; _NOT_FOUND: no such
 * service, or with @must_exist no such room). */
static MucRoom *
disco_parse_room (const char *text, gboolean must_exist, Muc **muc_out, char **local_out,
                  GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(MynaJid) jid = myna_jid_parse (text, &local);
  Muc *muc;

  if (jid == NULL || myna_jid_get_local (jid) == NULL || myna_jid_get_resource (jid) != NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "'%s' is not a room JID (room@service)%s%s", text,
                   local != NULL ? ": " : "", local != NULL ? local->message : "");
      return NULL;
    }
  muc = disco_find_service (myna_jid_get_domain (jid), error);
  if (muc == NULL)
    return NULL;
  *muc_out = muc;
  if (local_out != NULL)
    *local_out = g_strdup (myna_jid_get_local (jid));
  MucRoom *room = muc_room_find (muc, myna_jid_get_local (jid));
  if (room == NULL && must_exist)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no room %s",
                 myna_jid_bare_string (jid));
  return room;
}

/* Creates room @local of @muc as an administrator would: unlocked, with
 * the service's defaults, @persistent and @public_room (-1: the default)
 * and @name (nullable), @owner (nullable) its owner.  NULL with @error
 * (G_IO_ERROR_EXISTS when it exists). */
static MucRoom *
disco_create_room (Muc *muc, const char *local, MynaJid *owner, int persistent,
                   int public_room, const char *name, GError **error)
{
  g_autoptr(GError) refused = NULL;
  MucRoom *room;

  if (muc_room_find (muc, local) != NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS, "room %s@%s exists", local,
                   myna_host_get_name (muc->host));
      return NULL;
    }
  room = muc_disco_room_create_admin (muc, local, &refused);
  if (room == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "room %s@%s not created: %s", local,
                   myna_host_get_name (muc->host),
                   refused != NULL ? refused->message : "refused");
      return NULL;
    }
  /* Nobody is there to configure it: it opens as configured by default. */
  room->locked = FALSE;
  if (persistent >= 0)
    room->config.persistent = persistent != 0;
  if (public_room >= 0)
    room->config.public_room = public_room != 0;
  if (name != NULL)
    {
      g_free (room->config.name);
      room->config.name = g_strdup (name);
    }
  if (owner != NULL)
    muc_room_set_affiliation (room, myna_jid_bare_string (owner), MUC_AFFIL_OWNER);
  muc_room_save (room);
  g_info ("room %s created by an administrator%s%s", myna_jid_to_string (room->jid),
          owner != NULL ? ", owner " : "", owner != NULL ? myna_jid_bare_string (owner) : "");
  return room;
}

MucRoom *
muc_disco_room_create_admin (Muc *muc, const char *local, GError **error)
{
  const char *domain = myna_host_get_name (muc->host);
  g_autoptr(MynaJid) service = myna_jid_new (NULL, domain, NULL, NULL);
  char *as_admin = g_strdup (domain);
  MucRoom *room;

  g_return_val_if_fail (muc != NULL && local != NULL, NULL);
  if (muc->admins == NULL)
    muc->admins = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (muc->admins, as_admin);
  room = muc_room_create (muc, local, service, error);
  g_ptr_array_remove (muc->admins, as_admin);
  if (room != NULL && g_hash_table_contains (room->affiliations, domain))
    muc_room_store_affiliation (room, domain, MUC_AFFIL_NONE);
  return room;
}

/* Destroys @room, its occupants told @reason (XEP-0045 §10.9). */
static void
disco_destroy_room (MucRoom *room, const char *reason)
{
  g_info ("room %s destroyed by an administrator", myna_jid_to_string (room->jid));
  muc_room_destroy (room, NULL, reason, NULL);
}

/* "muc list [SERVICE]": one line per room, sorted:
 * JID TAB occupants TAB persistent|temporary TAB public|hidden TAB name */
static gboolean
disco_cmd_list (const char *const *argv, GString *out, GError **error)
{
  for (guint s = 0; disco_services != NULL && s < disco_services->len; s++)
    {
      Muc *muc = disco_services->pdata[s];
      if (argv[2] != NULL && strcmp (argv[2], myna_host_get_name (muc->host)) != 0)
        continue;
      g_autoptr(GPtrArray) rooms = disco_listed_rooms (muc, TRUE);
      for (guint i = 0; i < rooms->len; i++)
        {
          MucRoom *room = rooms->pdata[i];
          g_string_append_printf (out, "%s\t%u\t%s\t%s\t%s%s\n", myna_jid_to_string (room->jid),
                                  g_hash_table_size (room->occupants),
                                  room->config.persistent ? "persistent" : "temporary",
                                  room->config.public_room ? "public" : "hidden",
                                  disco_room_name (room), room->locked ? " (locked)" : "");
        }
    }
  if (argv[2] != NULL && disco_find_service (argv[2], error) == NULL)
    return FALSE;
  return TRUE;
}

/* "muc create ROOM@SERVICE [--persistent|--temporary] [--public|--hidden]
 * [--owner JID] [--name NAME]" */
static gboolean
disco_cmd_create (const char *const *argv, GString *out, GError **error)
{
  g_autoptr(MynaJid) owner = NULL;
  g_autofree char *local = NULL;
  g_autofree char *name = NULL;
  int persistent = -1, public_room = -1;
  Muc *muc = NULL;

  if (argv[2] == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "usage: muc create ROOM@SERVICE [--persistent|--temporary] "
                           "[--public|--hidden] [--owner JID] [--name NAME]");
      return FALSE;
    }
  for (guint i = 3; argv[i] != NULL; i++)
    {
      if (strcmp (argv[i], "--persistent") == 0 || strcmp (argv[i], "--temporary") == 0)
        persistent = strcmp (argv[i], "--persistent") == 0;
      else if (strcmp (argv[i], "--public") == 0 || strcmp (argv[i], "--hidden") == 0)
        public_room = strcmp (argv[i], "--public") == 0;
      else if (strcmp (argv[i], "--owner") == 0 && argv[i + 1] != NULL && owner == NULL)
        {
          g_autoptr(GError) bad = NULL;
          owner = myna_jid_parse (argv[++i], &bad);
          if (owner == NULL || myna_jid_get_local (owner) == NULL)
            {
              g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "--owner '%s' is not a user's JID", argv[i]);
              return FALSE;
            }
        }
      else if (strcmp (argv[i], "--name") == 0 && argv[i + 1] != NULL && name == NULL)
        {
          /* The name is the rest of the line up to the next option. */
          g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
          while (argv[i + 1] != NULL && !g_str_has_prefix (argv[i + 1], "--"))
            g_strv_builder_add (b, argv[++i]);
          g_auto(GStrv) words = g_strv_builder_end (b);
          name = g_strjoinv (" ", words);
        }
      else
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       "muc create: unknown or incomplete option '%s'", argv[i]);
          return FALSE;
        }
    }
  if (disco_parse_room (argv[2], FALSE, &muc, &local, error) != NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS, "room %s exists", argv[2]);
      return FALSE;
    }
  if (muc == NULL)
    return FALSE;
  g_clear_error (error);
  MucRoom *room = disco_create_room (muc, local, owner, persistent, public_room, name, error);
  if (room == NULL)
    return FALSE;
  g_string_append_printf (out, "created %s (%s)\n", myna_jid_to_string (room->jid),
                          room->config.persistent ? "persistent" : "temporary");
  return TRUE;
}

/* "muc destroy ROOM@SERVICE [REASON…]" */
static gboolean
disco_cmd_destroy (const char *const *argv, GString *out, GError **error)
{
  Muc *muc = NULL;

  if (argv[2] == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "usage: muc destroy ROOM@SERVICE [REASON]");
      return FALSE;
    }
  MucRoom *room = disco_parse_room (argv[2], TRUE, &muc, NULL, error);
  if (room == NULL)
    return FALSE;
  g_autofree char *reason = argv[3] != NULL ? g_strjoinv (" ", (char **) argv + 3) : NULL;
  g_autofree char *jid = g_strdup (myna_jid_to_string (room->jid));
  disco_destroy_room (room, reason);
  g_string_append_printf (out, "destroyed %s\n", jid);
  return TRUE;
}

/* The `muc` admin command. */
static gboolean
disco_admin_command (MynaModule *mod, const char *const *argv, GString *out,
                     gpointer unused, GError **error)
{
  const char *sub = argv[1] != NULL ? argv[1] : "";

  if (strcmp (sub, "list") == 0 && (argv[2] == NULL || argv[3] == NULL))
    return disco_cmd_list (argv, out, error);
  if (strcmp (sub, "create") == 0)
    return disco_cmd_create (argv, out, error);
  if (strcmp (sub, "destroy") == 0)
    return disco_cmd_destroy (argv, out, error);
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       "usage: muc list [SERVICE] | muc create ROOM@SERVICE [--persistent] "
                       "[--hidden] [--owner JID] [--name NAME] | muc destroy ROOM@SERVICE "
                       "[REASON]");
  return FALSE;
}

/* ---- the HTTP API: /api/v1/muc/rooms ------------------------------------------------- */

#ifdef MYNA_HAVE_HTTP

static void
disco_respond_json (MynaHttpRequest *req, guint status, JsonBuilder *b)
{
  g_autoptr(JsonNode) root = json_builder_get_root (b);
  g_autofree char *text = json_to_string (root, FALSE);

  myna_http_request_respond (req, status, "application/json", text, -1);
}

/* {"jid", "name", "occupants", "persistent", "public"} of @room. */
static void
disco_room_json (JsonBuilder *b, MucRoom *room)
{
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "jid");
  json_builder_add_string_value (b, myna_jid_to_string (room->jid));
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, disco_room_name (room));
  json_builder_set_member_name (b, "occupants");
  json_builder_add_int_value (b, g_hash_table_size (room->occupants));
  json_builder_set_member_name (b, "persistent");
  json_builder_add_boolean_value (b, room->config.persistent);
  json_builder_set_member_name (b, "public");
  json_builder_add_boolean_value (b, room->config.public_room);
  json_builder_end_object (b);
}

/* The HTTP status for an admin error. */
static guint
disco_http_status (const GError *error)
{
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
    return 404;
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_EXISTS))
    return 409;
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT))
    return 400;
  return 403;
}

/* GET /api/v1/muc/rooms[?service=DOMAIN] */
static void
disco_http_list (MynaHttpRequest *req)
{
  g_autoptr(JsonBuilder) b = json_builder_new_immutable ();
  g_autoptr(GError) error = NULL;
  const char *service = myna_http_request_get_query (req, "service");

  if (service != NULL && disco_find_service (service, &error) == NULL)
    {
      myna_http_request_respond_error (req, disco_http_status (error), "%s", error->message);
      return;
    }
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "rooms");
  json_builder_begin_array (b);
  for (guint s = 0; disco_services != NULL && s < disco_services->len; s++)
    {
      Muc *muc = disco_services->pdata[s];
      if (service != NULL && strcmp (service, myna_host_get_name (muc->host)) != 0)
        continue;
      g_autoptr(GPtrArray) rooms = disco_listed_rooms (muc, TRUE);
      for (guint i = 0; i < rooms->len; i++)
        disco_room_json (b, rooms->pdata[i]);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  disco_respond_json (req, 200, b);
}

/* POST /api/v1/muc/rooms {"room", "service"?, "owner"?, "persistent"?,
 * "public"?, "name"?} */
static void
disco_http_create (MynaHttpRequest *req)
{
  g_auto(MynaApiMucRoom) body = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonBuilder) b = json_builder_new_immutable ();
  gsize len;
  const char *text = myna_http_request_get_body (req, &len);
  Muc *muc;
  MucRoom *room;

  if (!myna_api_parse_muc_room (text, len, &body, &error))
    {
      g_debug ("room creation from %s refused: %s", myna_http_request_get_peer (req),
               error->message);
      myna_http_request_respond_error (req, 400, "%s", error->message);
      return;
    }
  muc = disco_find_service (body.service, &error);
  room = muc != NULL ? disco_create_room (muc, body.room, body.owner, body.persistent,
                                          body.public_room, body.name, &error)
                     : NULL;
  if (room == NULL)
    {
      myna_http_request_respond_error (req, disco_http_status (error), "%s", error->message);
      return;
    }
  g_autofree char *location = g_strdup_printf (HTTP_PREFIX "/rooms/%s",
                                               myna_jid_to_string (room->jid));
  myna_http_request_set_header (req, "Location", location);
  disco_room_json (b, room);
  disco_respond_json (req, 201, b);
}

/* DELETE /api/v1/muc/rooms/ROOM@SERVICE[?reason=TEXT] */
static void
disco_http_destroy (MynaHttpRequest *req, const char *segment)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *jid = g_uri_unescape_string (segment, NULL);
  const char *reason = myna_http_request_get_query (req, "reason");
  Muc *muc = NULL;
  MucRoom *room = jid != NULL ? disco_parse_room (jid, TRUE, &muc, NULL, &error) : NULL;

  if (room == NULL)
    {
      if (jid == NULL)
        myna_http_request_respond_error (req, 400, "not a room JID");
      else
        myna_http_request_respond_error (req, disco_http_status (error), "%s", error->message);
      return;
    }
  if (reason != NULL && (!g_utf8_validate (reason, -1, NULL) || !myna_api_text_is_xml (reason)
                         || strlen (reason) > MYNA_API_MAX_SUBJECT))
    {
      myna_http_request_respond_error (req, 400, "?reason= is too long or not text");
      return;
    }
  disco_destroy_room (room, reason);
  myna_http_request_respond (req, 204, NULL, NULL, 0);
}

static void
disco_http_method_not_allowed (MynaHttpRequest *req, const char *allow)
{
  myna_http_request_set_header (req, "Allow", allow);
  myna_http_request_respond_error (req, 405, "%s is not allowed here (allowed: %s)",
                                   myna_http_request_get_method (req), allow);
}

/* The rest/1 handle to check tokens with: that of the service owning the
 * route (the route's user data). */
static MynaService *
disco_rest (gpointer owner)
{
  return ((Disco *) ((Muc *) owner)->disco_data)->rest;
}

/* Before a body is read: only a request with a host's token goes on. */
static void
disco_http_check (MynaHttpRequest *req, gpointer owner)
{
  myna_rest_authorize_any (disco_rest (owner), req);
}

/* The route went with the instance that added it. */
static void
disco_route_gone (gpointer data)
{
  if (disco_route_owner == data)
    {
      disco_route = 0;
      disco_route_owner = NULL;
    }
}

/* /api/v1/muc… */
static void
disco_http_handle (MynaHttpRequest *req, gpointer owner)
{
  const char *sub = myna_http_request_get_subpath (req);
  const char *method = myna_http_request_get_method (req);

  if (!myna_rest_authorize_any (disco_rest (owner), req))
    return;
  if (strcmp (sub, "/rooms") == 0 || strcmp (sub, "/rooms/") == 0)
    {
      if (g_strcmp0 (method, "GET") == 0)
        disco_http_list (req);
      else if (g_strcmp0 (method, "POST") == 0)
        disco_http_create (req);
      else
        disco_http_method_not_allowed (req, "GET, POST");
    }
  else if (g_str_has_prefix (sub, "/rooms/") && strchr (sub + 7, '/') == NULL)
    {
      if (g_strcmp0 (method, "DELETE") == 0)
        disco_http_destroy (req, sub + 7);
      else
        disco_http_method_not_allowed (req, "DELETE");
    }
  else
    myna_http_request_respond_error (req, 404, "no such resource");
}

#endif /* MYNA_HAVE_HTTP */

/* ---- load and unload ----------------------------------------------------------------- */

gboolean
muc_disco_init (Muc *muc, GError **error)
{
  Disco *disco = g_new0 (Disco, 1);

  muc->disco_data = disco;
  /* The service's disco#info, answered by the disco module as by us. */
  myna_module_add_identity (muc->mod, "conference", "text", DISCO_SERVICE_NAME);
  myna_module_add_feature (muc->mod, NS_MUC);
  myna_module_add_feature (muc->mod, NS_RSM);
  /* Optional: the HTTP API answers 401 while no rest module is bound. */
  disco->rest = myna_module_use (muc->mod, "rest", 1, NULL);
  myna_module_add_admin_command (muc->mod, "muc",
                                 "muc list|create|destroy", disco_admin_command, NULL, NULL);
  if (disco_services == NULL)
    disco_services = g_ptr_array_new ();
  /* A previous instance of this host, unloaded but not yet freed (its
   * storage writes pending), is no longer the service. */
  for (guint i = disco_services->len; i > 0; i--)
    if (((Muc *) disco_services->pdata[i - 1])->host == muc->host)
      g_ptr_array_remove_index (disco_services, i - 1);
  g_ptr_array_add (disco_services, muc);
#ifdef MYNA_HAVE_HTTP
  if (disco_route == 0)
    {
      disco_route = myna_http_route_add (muc->server, HTTP_PREFIX, disco_http_handle, muc,
                                         disco_route_gone);
      if (disco_route != 0)
        {
          disco_route_owner = muc;
          myna_http_route_set_check (muc->server, disco_route, disco_http_check);
        }
      else
        g_warning ("the HTTP route " HTTP_PREFIX " is taken: no HTTP API for MUC rooms");
    }
#endif
  return TRUE;
}

void
muc_disco_fini (Muc *muc)
{
#ifdef MYNA_HAVE_HTTP
  if (disco_route != 0 && disco_route_owner == muc)
    myna_http_route_remove (muc->server, disco_route);   /* disco_route_gone */
#endif
  if (disco_services != NULL && g_ptr_array_remove (disco_services, muc)
      && disco_services->len == 0)
    g_clear_pointer (&disco_services, g_ptr_array_unref);
  g_clear_pointer (&muc->disco_data, g_free);
}
