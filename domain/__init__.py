from domain.build_check import check

check()  # before any other domain module loads: a compiled one must match its source
