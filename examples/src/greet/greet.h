/* libgreet: a tiny shared library used by the examples. */
#ifndef GREET_H
#define GREET_H

/* Write a greeting for name to stdout; returns 0 on success. */
int greet(const char *name);
const char *greet_version(void);

#endif
