#include "greet.h"

#include <stdio.h>

int greet(const char *name)
{
    return printf("hello, %s (from libgreet %s)\n", name, greet_version()) < 0 ? -1 : 0;
}

const char *greet_version(void)
{
    return "1.0.0";
}
