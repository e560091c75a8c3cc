"""An app factory: --app factory:create_app() or factory:create_app('x')."""


def create_app(greeting='hi'):
    def app(environ, start_response):
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [greeting.encode()]
    return app


class Holder:
    class inner:
        @staticmethod
        def app(environ, start_response):
            start_response('200 OK', [('Content-Type', 'text/plain')])
            return [b'dotted']
