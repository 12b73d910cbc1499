/* mynad.c: the Myna daemon.  All of it is in libmyna (core/daemon.c), the
 * library the modules it opens link too. */
#include <myna/daemon.h>

int
main (int argc, char **argv)
{
  return myna_daemon_main (argc, argv);
}
