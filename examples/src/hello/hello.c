/* hello: a program that links libgreet.  Built against a store path of
 * libgreet, its binary carries that path (as its run path), which is how
 * the store learns that hello refers to libgreet. */
#include <greet.h>

int main(int argc, char **argv)
{
    return greet(argc > 1 ? argv[1] : "world") == 0 ? 0 : 1;
}
