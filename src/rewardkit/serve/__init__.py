"""`rewardkit serve`: a compose spec over HTTP (Starlette on uvicorn), imported only when serving.

`protocol` reads and checks request bodies (rewardkit's `/score`, OpenRLHF's `/get_reward`) and builds the
answers; `batching` merges concurrent calls to a model-backed component into one call; `scorer` scores a request
with the spec's components; `app` is the ASGI application and the server loop.
"""
