"""python -m rewardkit"""

from rewardkit.cli.main import main

main()
