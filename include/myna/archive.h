/* archive.h: the message archive service ("archive/1"), provided by the
 * mam module (XEP-0313 Message Archive Management), for modules that
 * keep messages for later reading: a chat room's history (MUC, with the
 * room's bare JID as the owner), or a third party's.
 *
 *   MYNA_MODULE_DEFINE (mine, …, .uses = MYNA_STRV ("archive/1"));
 *   static MynaService *archive;
 *   … in load: archive = myna_module_use (mod, MYNA_ARCHIVE_SERVICE, 1, error);
 *   … later:   g_autofree char *id = myna_archive_store (archive, "room@conference.example",
 *                                                       "juliet@example", msg);
 *              if (id != NULL) add <stanza-id xmlns='urn:xmpp:sid:0' by=OWNER id=id/>
 *
 * An archive belongs to an owner, a bare JID (an account, or a room);
 * each message in it has an id, its XEP-0359 stanza-id in that archive:
 * opaque, unique in the archive, known as soon as store() returns (the
 * write itself completes later; a query queued after it sees it).  The
 * archive keeps a copy of the message as given, with the peer's JID
 * (`with`: a bare JID, or a full one such as a room occupant's
 * room@service/nick, kept as given) and the time it was stored; the mam module's retention
 * (`archive_expires_after`) applies to it.  Queries are asynchronous;
 * their callback runs in the provider's context, from the main loop.  A
 * user that unloads with queries in flight cancels them in its `unload`.
 * Leaving the service out of `.uses` makes it optional: while no mam
 * module is loaded on the host, store() answers NULL and query() answers
 * at once with an error (G_IO_ERROR_NOT_SUPPORTED). */
#pragma once

#include <gio/gio.h>
#include <string.h>
#include <myna/module.h>

G_BEGIN_DECLS

#define MYNA_ARCHIVE_SERVICE "archive"

/* One archived message, as a query gives it (borrowed for the callback). */
typedef struct {
  const char *id;          /* its stanza-id in the owner's archive */
  gint64      timestamp;   /* when it was stored, µs since the epoch */
  const char *with;        /* the peer's JID as stored, or "" */
  MynaStanza *message;     /* the message as stored */
} MynaArchiveMessage;

/* What to query; zero fields do not filter. */
typedef struct {
  const char *with;        /* only messages stored with this JID (exactly:
                            * a bare one does not match full ones) */
  gint64      start;       /* stored at or after (µs since the epoch) */
  gint64      end;         /* stored at or before (µs since the epoch) */
  const char *after_id;    /* only messages after this one */
  const char *before_id;   /* only messages before this one */
  gboolean    last_page;   /* page backward: the last @max messages that
                            * match, not the first ones */
  guint       max;         /* page size; 0: the provider's default */
} MynaArchiveFilter;

/* The page of a query, oldest first: @messages holds MynaArchiveMessage*,
 * borrowed for the call; @complete is TRUE when no further message
 * matches in the query's direction (after the page, or before it for
 * @last_page).  @error: G_IO_ERROR_NOT_FOUND when after_id or before_id
 * names no message of the archive, G_IO_ERROR_INVALID_ARGUMENT for an
 * owner that is not a bare JID, a MYNA_STORAGE_ERROR when the storage
 * failed; @messages is then empty. */
typedef void (*MynaArchiveQueryFunc) (GPtrArray *messages, gboolean complete,
                                      const GError *error, gpointer user_data);

/* The table of archive/1.  Fields are only ever added at the end, with a
 * new version; @size is sizeof the provider's table.  Each function gets
 * the provider instance first (myna_service_get_provider). */
typedef struct {
  gsize   size;
  /* Stores a copy of @message (borrowed) in @owner's archive with peer
   * @with (a JID, bare or full, normalised; or NULL).  @owner may be on
   * any domain this server serves (a component's room@conference…).
   * Returns: (transfer full) (nullable) its id; NULL when @owner is not
   * a bare JID with a local part. */
  char  *(*store)        (MynaModule *provider, const char *owner,
                          const char *with, MynaStanza *message);
  /* Queries @owner's archive; @func runs once (never from inside this
   * call), then @destroy on @user_data.  Returns the query's handle for
   * cancel(), never 0. */
  guint  (*query)        (MynaModule *provider, const char *owner,
                          const MynaArchiveFilter *filter,
                          MynaArchiveQueryFunc func, gpointer user_data,
                          GDestroyNotify destroy);
  /* Forgets query @handle: its @func will not run, its @destroy runs now.
   * A handle whose query has ended is ignored. */
  void   (*cancel)       (MynaModule *provider, guint handle);
  /* Deletes every message of @owner's archive (a deleted account, a
   * destroyed room). */
  void   (*delete_owner) (MynaModule *provider, const char *owner);
} MynaArchiveService;

/* The table while an archive is bound (NULL otherwise). */
static inline const MynaArchiveService *
myna_archive_table (MynaService *archive)
{
  return (const MynaArchiveService *) myna_service_get_table (archive);
}

/* Returns: (transfer full) (nullable) the stored message's id */
static inline char *
myna_archive_store (MynaService *archive, const char *owner, const char *with,
                    MynaStanza *message)
{
  const MynaArchiveService *t = myna_archive_table (archive);
  MynaModule *previous;
  char *id;

  if (t == NULL)
    return NULL;
  previous = myna_service_enter (archive);
  id = t->store (myna_service_get_provider (archive), owner, with, message);
  myna_service_leave (previous);
  return id;
}

/* Returns the query's handle (0 when unbound: @func and @destroy ran). */
static inline guint
myna_archive_query_messages (MynaService *archive, const char *owner,
                             const MynaArchiveFilter *filter,
                             MynaArchiveQueryFunc func, gpointer user_data,
                             GDestroyNotify destroy)
{
  const MynaArchiveService *t = myna_archive_table (archive);
  MynaModule *previous;
  guint handle;

  if (t == NULL)
    {
      GError *error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                                           "no message archive on this host");
      GPtrArray *none = g_ptr_array_new ();

      func (none, TRUE, error, user_data);
      g_ptr_array_unref (none);
      g_error_free (error);
      if (destroy != NULL)
        destroy (user_data);
      return 0;
    }
  previous = myna_service_enter (archive);
  handle = t->query (myna_service_get_provider (archive), owner, filter, func,
                     user_data, destroy);
  myna_service_leave (previous);
  return handle;
}

static inline void
myna_archive_cancel (MynaService *archive, guint handle)
{
  const MynaArchiveService *t = myna_archive_table (archive);
  MynaModule *previous;

  if (t == NULL || handle == 0)
    return;
  previous = myna_service_enter (archive);
  t->cancel (myna_service_get_provider (archive), handle);
  myna_service_leave (previous);
}

static inline void
myna_archive_delete_owner (MynaService *archive, const char *owner)
{
  const MynaArchiveService *t = myna_archive_table (archive);
  MynaModule *previous;

  if (t == NULL)
    return;
  previous = myna_service_enter (archive);
  t->delete_owner (myna_service_get_provider (archive), owner);
  myna_service_leave (previous);
}

/* ---- Reading a query ------------------------------------------------------
 * An archive answering XEP-0313 queries itself (an account's, a room's)
 * reads the <query xmlns='urn:xmpp:mam:2'/> of an IQ set the same way:
 *
 *   g_auto(MynaArchiveRequest) req = MYNA_ARCHIVE_REQUEST_INIT;
 *   const char *why = NULL;
 *   if (!myna_archive_request_parse (query, &req, &why))
 *     → bad-request with @why as its text
 *
 * then applies its own limits (which fields it supports, its largest
 * page) and turns the request into a MynaArchiveFilter or its own
 * query. */

#define MYNA_ARCHIVE_NS_MAM  "urn:xmpp:mam:2"
#define MYNA_ARCHIVE_NS_RSM  "http://jabber.org/protocol/rsm"
#define MYNA_ARCHIVE_NS_DATA "jabber:x:data"

/* A query as the client wrote it: its data form (XEP-0313 §4.1: with,
 * start, end, after-id, before-id, ids) and its RSM <set/> (XEP-0059).
 * Owned strings; clear with myna_archive_request_clear(). */
typedef struct {
  char      *queryid;     /* the queryid attribute, or NULL */
  char      *with;        /* the `with` field as a normalised JID, bare or
                           * full as given, or NULL */
  gint64     start, end;  /* µs since the epoch; 0: not given */
  GPtrArray *after_ids;   /* char*: `after-id` fields, then RSM <after/> */
  GPtrArray *before_ids;  /* char*: `before-id` fields, then a non-empty
                           * RSM <before/> */
  GPtrArray *ids;         /* char*: the `ids` field's values */
  gboolean   last_page;   /* RSM <before/> was given: page backward (empty:
                           * the last page) */
  gboolean   flip;        /* <flip-page/> */
  gboolean   has_max;     /* RSM <max/> was given */
  guint      max;         /* its value (at most G_MAXUINT); 0 asks for the
                           * count alone */
} MynaArchiveRequest;

#define MYNA_ARCHIVE_REQUEST_INIT { 0 }

/* Frees what @req holds and zeroes it (a zeroed request is fine). */
static inline void
myna_archive_request_clear (MynaArchiveRequest *req)
{
  g_clear_pointer (&req->queryid, g_free);
  g_clear_pointer (&req->with, g_free);
  g_clear_pointer (&req->after_ids, g_ptr_array_unref);
  g_clear_pointer (&req->before_ids, g_ptr_array_unref);
  g_clear_pointer (&req->ids, g_ptr_array_unref);
  memset (req, 0, sizeof *req);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (MynaArchiveRequest, myna_archive_request_clear)

/* Parses an XEP-0082 date-time into @us (µs since the epoch).  FALSE when
 * @text is not one, or is not after the epoch. */
static inline gboolean
myna_archive_parse_time (const char *text, gint64 *us)
{
  GDateTime *t = text != NULL ? g_date_time_new_from_iso8601 (text, NULL) : NULL;

  if (t == NULL)
    return FALSE;
  *us = g_date_time_to_unix (t) * G_USEC_PER_SEC + g_date_time_get_microsecond (t);
  g_date_time_unref (t);
  return *us > 0;
}

/* The text of @field's first <value/>, or NULL. */
static inline const char *
myna_archive_field_value (MynaStanza *field)
{
  MynaStanza *value = myna_stanza_get_child (field, "value", MYNA_ARCHIVE_NS_DATA);

  return value != NULL ? myna_stanza_get_text (value) : NULL;
}

/* Reads the data form of a query into @req; FALSE with @why on a bad one
 * (an unknown field, a FORM_TYPE other than urn:xmpp:mam:2, a bad JID or
 * date, start after end). */
static inline gboolean
myna_archive_request_read_form (MynaArchiveRequest *req, MynaStanza *form, const char **why)
{
  for (guint i = 0; form != NULL && i < myna_stanza_get_n_children (form); i++)
    {
      MynaStanza *field = myna_stanza_get_child_nth (form, i);
      const char *var, *value;

      if (myna_stanza_is_text (field) || g_strcmp0 (myna_stanza_get_name (field), "field") != 0)
        continue;
      var = myna_stanza_get_attr (field, "var");
      value = myna_archive_field_value (field);
      if (g_strcmp0 (var, "FORM_TYPE") == 0)
        {
          if (g_strcmp0 (value, MYNA_ARCHIVE_NS_MAM) != 0)
            return (*why = "FORM_TYPE must be " MYNA_ARCHIVE_NS_MAM), FALSE;
        }
      else if (g_strcmp0 (var, "with") == 0)
        {
          MynaJid *jid = value != NULL ? myna_jid_parse (value, NULL) : NULL;

          if (jid == NULL)
            return (*why = "with is not a JID"), FALSE;
          g_free (req->with);
          req->with = g_strdup (myna_jid_to_string (jid));
          myna_jid_unref (jid);
        }
      else if (g_strcmp0 (var, "start") == 0)
        {
          if (!myna_archive_parse_time (value, &req->start))
            return (*why = "start is not an XEP-0082 date-time"), FALSE;
        }
      else if (g_strcmp0 (var, "end") == 0)
        {
          if (!myna_archive_parse_time (value, &req->end))
            return (*why = "end is not an XEP-0082 date-time"), FALSE;
        }
      else if (g_strcmp0 (var, "after-id") == 0 && value != NULL)
        g_ptr_array_add (req->after_ids, g_strdup (value));
      else if (g_strcmp0 (var, "before-id") == 0 && value != NULL)
        g_ptr_array_add (req->before_ids, g_strdup (value));
      else if (g_strcmp0 (var, "ids") == 0)
        {
          for (guint j = 0; j < myna_stanza_get_n_children (field); j++)
            {
              MynaStanza *v = myna_stanza_get_child_nth (field, j);

              if (!myna_stanza_is_text (v) && g_strcmp0 (myna_stanza_get_name (v), "value") == 0)
                g_ptr_array_add (req->ids, g_strdup (myna_stanza_get_text (v)));
            }
          if (req->ids->len == 0)
            return (*why = "ids has no value"), FALSE;
        }
      else
        return (*why = "unknown field"), FALSE;
    }
  if (req->start != 0 && req->end != 0 && req->start > req->end)
    return (*why = "start is after end"), FALSE;
  return TRUE;
}

/* Reads the RSM <set/> of a query into @req; FALSE with @why on a bad one
 * (max not a number, an empty <after/>, <index/>: not supported). */
static inline gboolean
myna_archive_request_read_rsm (MynaArchiveRequest *req, MynaStanza *set, const char **why)
{
  MynaStanza *max, *after, *before;

  if (set == NULL)
    return TRUE;
  max = myna_stanza_get_child (set, "max", MYNA_ARCHIVE_NS_RSM);
  after = myna_stanza_get_child (set, "after", MYNA_ARCHIVE_NS_RSM);
  before = myna_stanza_get_child (set, "before", MYNA_ARCHIVE_NS_RSM);
  if (max != NULL)
    {
      const char *text = myna_stanza_get_text (max);
      char *end = NULL;
      guint64 n = g_ascii_strtoull (text, &end, 10);

      if (!g_ascii_isdigit (*text) || *end != '\0')
        return (*why = "max is not a number"), FALSE;
      req->has_max = TRUE;
      req->max = (guint) MIN (n, (guint64) G_MAXUINT);
    }
  if (after != NULL)
    {
      if (*myna_stanza_get_text (after) == '\0')
        return (*why = "after is empty"), FALSE;
      g_ptr_array_add (req->after_ids, g_strdup (myna_stanza_get_text (after)));
    }
  if (before != NULL)
    {
      req->last_page = TRUE;
      if (*myna_stanza_get_text (before) != '\0')
        g_ptr_array_add (req->before_ids, g_strdup (myna_stanza_get_text (before)));
    }
  if (myna_stanza_get_child (set, "index", MYNA_ARCHIVE_NS_RSM) != NULL)
    return (*why = "index is not supported"), FALSE;
  return TRUE;
}

/* Reads @query (a <query xmlns='urn:xmpp:mam:2'/>) into @req, which it
 * clears first.  FALSE with @why (static text for the bad-request's
 * <text/> and the log) on a malformed one; @req is then partly filled
 * and still needs clearing. */
static inline gboolean
myna_archive_request_parse (MynaStanza *query, MynaArchiveRequest *req, const char **why)
{
  myna_archive_request_clear (req);
  req->after_ids = g_ptr_array_new_with_free_func (g_free);
  req->before_ids = g_ptr_array_new_with_free_func (g_free);
  req->ids = g_ptr_array_new_with_free_func (g_free);
  req->queryid = g_strdup (myna_stanza_get_attr (query, "queryid"));
  req->flip = myna_stanza_get_child (query, "flip-page", MYNA_ARCHIVE_NS_MAM) != NULL;
  return myna_archive_request_read_form (req, myna_stanza_get_child (query, "x",
                                                                     MYNA_ARCHIVE_NS_DATA),
                                         why)
         && myna_archive_request_read_rsm (req, myna_stanza_get_child (query, "set",
                                                                       MYNA_ARCHIVE_NS_RSM),
                                           why);
}

/* Removes from @message the XEP-0359 <stanza-id/>s claiming to be by @by
 * (only the archive of @by, a user's or a room's, says what its ids are:
 * XEP-0359 §3.1), keeping the others' in their order.  Returns whether
 * one was removed (the caller logs it). */
static inline gboolean
myna_archive_strip_stanza_ids (MynaStanza *message, const char *by)
{
  GPtrArray *keep;
  gboolean forged = FALSE;

  /* Most messages carry none: nothing to allocate then. */
  if (myna_stanza_get_child (message, "stanza-id", "urn:xmpp:sid:0") == NULL)
    return FALSE;
  keep = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_stanza_unref);
  for (guint i = 0; i < myna_stanza_get_n_children (message); i++)
    {
      MynaStanza *child = myna_stanza_get_child_nth (message, i);

      if (myna_stanza_is_text (child) || g_strcmp0 (myna_stanza_get_name (child), "stanza-id") != 0
          || g_strcmp0 (myna_stanza_get_ns (child), "urn:xmpp:sid:0") != 0)
        continue;
      if (g_strcmp0 (myna_stanza_get_attr (child, "by"), by) == 0)
        forged = TRUE;
      else
        g_ptr_array_add (keep, myna_stanza_ref (child));
    }
  if (forged)
    {
      myna_stanza_remove_children (message, "stanza-id", "urn:xmpp:sid:0");
      for (guint i = 0; i < keep->len; i++)
        myna_stanza_append (message, keep->pdata[i]);
    }
  g_ptr_array_unref (keep);
  return forged;
}

G_END_DECLS
