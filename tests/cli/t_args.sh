# Command-line arguments: help, version, numbers that name their flag.
ok help_top "$CKE" --help
ok help_top_short "$CKE" -h
refuses version 0 '^cke [0-9]+\.[0-9]+' "$CKE" --version
refuses unknown_command 2 "unknown command 'frobnicate'" "$CKE" frobnicate
