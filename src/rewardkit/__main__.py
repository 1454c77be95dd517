"""python -m rewardkit"""

from .cli import main

main()
