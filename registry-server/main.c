/* plan-registry: the registry server.  Until the registry issue lands it
 * only identifies itself; it exists so that the build, install and
 * packaging already carry both programs. */
#include "../common/common.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--version")) {
        printf("plan-registry %s\n", PLAN_VERSION);
        return 0;
    }
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: plan-registry --version | --help\n"
               "\n"
               "The plan registry server.  It has no subcommands yet: 'init', 'serve'\n"
               "and 'token' arrive with the signed registry.\n");
        return 0;
    }
    fprintf(stderr, "plan-registry: no subcommands yet; see 'plan-registry --help'\n");
    return 2;
}
