"""Speaker verification: trials, scoring backends, EER / minDCF and their intervals."""
