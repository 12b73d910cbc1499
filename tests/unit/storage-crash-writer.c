/* storage-crash-writer.c: the writing half of the storage crash test in
 * test-storage.c.
 *
 * Usage: storage-crash-writer PATH
 *
 * Opens the storage at PATH and keeps key–value and archive writes queued
 * without pause; for each write whose callback reports success it prints
 * one line and flushes stdout:
 *   kv KEY   (the value written is "v-KEY")
 *   ar ID    (an item of host crash.example, user writer, archive crash)
 * It runs until killed: the test SIGKILLs it mid-write, then checks that
 * every acknowledged write survived.  As a safety net it also exits when
 * stdout goes away (SIGPIPE) or after LIFETIME_S seconds. */
#include "myna/storage.h"

#include <stdio.h>
#include <unistd.h>

#define CHUNK        128  /* writes queued at a time */
#define LOW_WATER    256  /* queue another chunk below this many in flight */
#define LIFETIME_S   300

typedef struct {
  MynaStorage *storage;
  int          pid;
  guint        next;
  guint        in_flight;
} Writer;

typedef struct {
  Writer *writer;
  char   *key;
} KvWrite;

static void queue_chunk (Writer *writer);

static void
kv_write_free (gpointer data)
{
  KvWrite *write = data;

  g_free (write->key);
  g_free (write);
}

static void
write_finished (Writer *writer)
{
  writer->in_flight--;
  if (writer->in_flight < LOW_WATER)
    queue_chunk (writer);
}

static void
kv_done (const GError *error, gpointer user_data)
{
  KvWrite *write = user_data;

  if (error == NULL)
    {
      printf ("kv %s\n", write->key);
      fflush (stdout);
    }
  else
    g_printerr ("storage-crash-writer: kv write failed: %s\n",
                error->message);
  write_finished (write->writer);
}

static void
archive_done (gint64 id, const GError *error, gpointer user_data)
{
  Writer *writer = user_data;

  if (error == NULL)
    {
      printf ("ar %" G_GINT64_FORMAT "\n", id);
      fflush (stdout);
    }
  else
    g_printerr ("storage-crash-writer: archive append failed: %s\n",
                error->message);
  write_finished (writer);
}

static void
queue_chunk (Writer *writer)
{
  for (guint i = 0; i < CHUNK; i++)
    {
      guint n = writer->next++;
      KvWrite *write = g_new0 (KvWrite, 1);
      g_autofree char *value = NULL;
      g_autofree char *data = NULL;

      write->writer = writer;
      write->key = g_strdup_printf ("k-%d-%u", writer->pid, n);
      value = g_strconcat ("v-", write->key, NULL);
      data = g_strdup_printf ("<message n='%u'/>", n);
      myna_kv_set (writer->storage, "crash.example", "writer", "crash",
                   write->key, value, kv_done, write, kv_write_free);
      myna_archive_append (writer->storage, "crash.example", "writer",
                           "crash", "peer@crash.example", 0, data,
                           archive_done, writer, NULL);
      writer->in_flight += 2;
    }
}

static gboolean
give_up (gpointer user_data)
{
  g_printerr ("storage-crash-writer: not killed after %d s, exiting\n",
              LIFETIME_S);
  _exit (3);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GMainLoop) loop = NULL;
  Writer writer = { 0 };

  if (argc != 2)
    {
      g_printerr ("usage: %s PATH\n", argv[0]);
      return 2;
    }
  writer.storage = myna_storage_open (argv[1], &error);
  if (writer.storage == NULL)
    {
      g_printerr ("storage-crash-writer: %s\n", error->message);
      return 1;
    }
  writer.pid = (int) getpid ();
  queue_chunk (&writer);
  queue_chunk (&writer);
  g_timeout_add_seconds (LIFETIME_S, give_up, NULL);
  loop = g_main_loop_new (NULL, FALSE);
  g_main_loop_run (loop);
  return 0;
}
