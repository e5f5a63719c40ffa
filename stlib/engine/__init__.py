"""The engine under ``stlib.stylize``: precision (bf16/fp16 autocast, channels-last, float32 Gram matrices),
the dynamo-free optimisers, and time/memory estimates. The course never needs to open it; ``stlib.gatys``
is the algorithm, and these are what make the same algorithm fast and robust."""
