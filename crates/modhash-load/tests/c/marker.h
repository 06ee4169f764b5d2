/* With MARKER_FILE defined, the including library's constructor creates
 * that file, so a test can tell whether the library's code ever ran. */
#ifdef MARKER_FILE
#include <stdio.h>
__attribute__((constructor)) static void marker_ran(void)
{
    FILE *f = fopen(MARKER_FILE, "w");
    if (f != NULL)
        fclose(f);
}
#endif
