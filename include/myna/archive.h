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
 * archive keeps a copy of the message as given, with the peer's bare JID
 * (`with`) and the time it was stored; the mam module's retention
 * (`archive_expires_after`) applies to it.  Queries are asynchronous;
 * their callback runs in the provider's context, from the main loop.  A
 * user that unloads with queries in flight cancels them in its `unload`.
 * Leaving the service out of `.uses` makes it optional: while no mam
 * module is loaded on the host, store() answers NULL and query() answers
 * at once with an error (G_IO_ERROR_NOT_SUPPORTED). */
#pragma once

#include <gio/gio.h>
#include <myna/module.h>

G_BEGIN_DECLS

#define MYNA_ARCHIVE_SERVICE "archive"

/* One archived message, as a query gives it (borrowed for the callback). */
typedef struct {
  const char *id;          /* its stanza-id in the owner's archive */
  gint64      timestamp;   /* when it was stored, µs since the epoch */
  const char *with;        /* the peer's bare JID, or "" */
  MynaStanza *message;     /* the message as stored */
} MynaArchiveMessage;

/* What to query; zero fields do not filter. */
typedef struct {
  const char *with;        /* only messages with this bare JID */
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
   * @with (a bare JID, or NULL).  Returns: (transfer full) (nullable) its
   * id; NULL when @owner is not a bare JID with a local part. */
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

G_END_DECLS
