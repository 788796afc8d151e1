#!/usr/bin/python3
"""The train/validation split of the corpora by piece (tunescribe_train/split.py has the rule).

  /usr/bin/python3 tools/train/split.py [--shared ../shared] [--write tools/train/split.json]
  /usr/bin/python3 tools/train/split.py --check     # verify split.json matches the rule
"""
import sys

from tunescribe_train.split import main

if __name__ == "__main__":
    sys.exit(main())
