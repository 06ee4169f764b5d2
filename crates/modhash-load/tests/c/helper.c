/* A library a test module needs. MARKER is what it answers; with
 * MARKER_FILE, its constructor creates that file, so a test can tell
 * whether this library's code ever ran. */
#ifndef MARKER
#define MARKER "helper A"
#endif

#ifdef MARKER_FILE
#include <stdio.h>
__attribute__((constructor)) static void ran(void)
{
    FILE *f = fopen(MARKER_FILE, "w");
    if (f != NULL)
        fclose(f);
}
#endif

const char *helper_marker(void)
{
    return MARKER;
}
