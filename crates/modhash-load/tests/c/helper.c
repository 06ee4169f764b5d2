/* A library a test module needs. MARKER is what it answers; see marker.h
 * for MARKER_FILE. */
#ifndef MARKER
#define MARKER "helper A"
#endif

#include "marker.h"

const char *helper_marker(void)
{
    return MARKER;
}
