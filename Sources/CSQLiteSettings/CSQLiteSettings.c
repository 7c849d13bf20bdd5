// The settings are inline functions in include/CSQLiteSettings.h; SwiftPM needs a source file.
#include "CSQLiteSettings.h"
