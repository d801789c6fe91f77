/* A shared object per module, linked with -Wl,--no-undefined by CMakeLists.txt:
 * it holds nothing but the module and the modules it may use. */
int jb_linkcheck_unused;
