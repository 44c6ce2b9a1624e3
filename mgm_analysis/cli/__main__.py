"""``python -m mgm_analysis.cli`` = ``mgm``."""

from . import main

if __name__ == "__main__":
    main()
