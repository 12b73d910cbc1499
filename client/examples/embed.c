/* embed.c: the smallest app on libmyna-client, built only through its
 * installed pkg-config file (plugins/build-and-test.sh builds and runs
 * it against the staged install):
 *
 *   cc embed.c $(pkg-config --cflags --libs myna-client)
 *
 * Opens a store, makes a client on a test clock and prints the
 * reconnection waits the library would use: proof that the headers,
 * the library and its GObject types work from outside the tree. */
#include <myna/client/myna-client.h>

int
main (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MynaClientStore) store = myna_client_store_new (":memory:", &error);
  g_autoptr(MynaClientClock) clock = myna_client_test_clock_new ();
  g_autoptr(MynaClient) client = NULL;

  if (store == NULL)
    {
      g_printerr ("embed: %s\n", error->message);
      return 1;
    }
  client = myna_client_new_with_clock (store, clock);
  g_print ("state %s; waits", myna_client_state_to_string (myna_client_get_state (client)));
  for (guint n = 1; n <= 12; n++)
    g_print (" %u", myna_client_backoff_delay (n, 2000, 600000, 0.0));
  g_print ("\n");
  return 0;
}
