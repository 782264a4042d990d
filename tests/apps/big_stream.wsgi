# 64 MiB in 64 KiB blocks: more than the socket buffers hold, so a client
# that does not read makes the server's write block.
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                              ('Content-Length', str(1024 * 65536))])
    block = b'z' * 65536
    return (block for _ in range(1024))
