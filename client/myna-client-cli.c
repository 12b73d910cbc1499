/* myna-client-cli.c: STUB — replaced by the myna-client command. */
#include <myna/client/myna-client.h>

int
main (int argc, char **argv)
{
  return 2;
}
